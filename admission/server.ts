/**
 * Wires the admission service: the Redis replica sync, gRPC (Admission,
 * health, reflection) and HTTP (/metrics, /healthz); drains gracefully.
 *
 * Both listeners are up before the first load so the switch and the
 * operator can see the state: health says NOT_SERVING (and calls are
 * answered by ADMISSION_NO_STATE_POLICY) until the first full load.
 */
import type { Clock } from '../core/clock.ts';
import type { Config } from '../core/config.ts';
import { bind, createStandardServer } from '../core/grpc/server.ts';
import type { Logger } from '../core/log.ts';
import { createRedisStateSource } from './adapters/redis-state.ts';
import { listenAdmissionHttp } from './http.ts';
import { createAdmissionMetrics, type AdmissionMetrics } from './metrics.ts';
import { startReplicaSync, type ReplicaStatus, type ReplicaSync } from './replica/sync.ts';
import { createAdmission, type AdmissionService } from './service.ts';
import { ADMISSION_SERVICE_NAME, admissionServiceDefinition, createAdmissionGrpcHandlers } from './transport/grpc.ts';

export type AdmissionConfig = Pick<Config,
  | 'host' | 'redisUrl' | 'redisKeyPrefix' | 'admissionPort' | 'admissionHttpPort'
  | 'admissionUnknownSubscriber' | 'admissionNoStatePolicy' | 'admissionEpochCheckMs'>;

export interface StartAdmissionOptions {
  config: AdmissionConfig;
  log: Logger;
  clock: Clock;
  /** Node process metrics (event loop lag, heap, …) on /metrics; main.ts turns them on. */
  processMetrics?: boolean;
}

export interface RunningAdmission {
  grpcPort: number;
  httpPort: number;
  service: AdmissionService;
  metrics: AdmissionMetrics;
  /** Resolves after the first full load from Redis (health SERVING from then on). */
  firstLoad: Promise<void>;
  status(): ReplicaStatus;
  /** Graceful: NOT_SERVING, lets in-flight calls finish, closes HTTP and Redis. Safe to call twice. */
  stop(): Promise<void>;
}

export async function startAdmission({ config, log, clock, processMetrics = false }: StartAdmissionOptions): Promise<RunningAdmission> {
  const grpcServer = createStandardServer();
  grpcServer.health.setStatus(ADMISSION_SERVICE_NAME, 'NOT_SERVING');
  let draining = false;

  const sync: ReplicaSync = startReplicaSync({
    source: createRedisStateSource({ url: config.redisUrl, prefix: config.redisKeyPrefix, log, clock }),
    clock,
    log,
    epochCheckMs: config.admissionEpochCheckMs,
    onFirstLoad: () => { if (!draining) grpcServer.setServing(ADMISSION_SERVICE_NAME, 'SERVING'); },
  });
  const status = () => sync.status();
  const metrics = createAdmissionMetrics({ status, processMetrics });
  const service = createAdmission({
    sync,
    policy: { unknownSubscriber: config.admissionUnknownSubscriber, noState: config.admissionNoStatePolicy },
    metrics,
    log,
    clock,
  });
  grpcServer.server.addService(admissionServiceDefinition(), createAdmissionGrpcHandlers(service, metrics, log));

  let grpcPort: number;
  let http;
  try {
    grpcPort = await bind(grpcServer.server, config.host, config.admissionPort);
    http = await listenAdmissionHttp({ metrics, log, status, draining: () => draining, noStatePolicy: config.admissionNoStatePolicy }, config.host, config.admissionHttpPort);
  } catch (err) {
    grpcServer.server.forceShutdown();
    await sync.stop();
    throw err;
  }

  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= (async () => {
    draining = true;
    grpcServer.setServing(ADMISSION_SERVICE_NAME, 'NOT_SERVING');
    // Calls are answered synchronously, so in-flight ones finish at once; the bound covers a client that never reads.
    const drained = await new Promise<boolean>((res) => {
      const t = setTimeout(() => res(false), 5000);
      grpcServer.server.tryShutdown(() => { clearTimeout(t); res(true); });
    });
    if (!drained) grpcServer.server.forceShutdown();
    await http.close();
    await sync.stop();
    log.info('admission stopped');
  })());

  return { grpcPort, httpPort: http.port, service, metrics, firstLoad: sync.firstLoad, status, stop };
}
