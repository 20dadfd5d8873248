/**
 * Wires the ingest service to its listeners: gRPC (Ingest, health,
 * reflection) and HTTP (/metrics, /healthz, /sql), and drains gracefully.
 */
import type { ClickHouse } from '../core/clickhouse/client.ts';
import { migrateClickHouse } from '../core/clickhouse/migrate.ts';
import type { Clock } from '../core/clock.ts';
import type { Config } from '../core/config.ts';
import { bind, createStandardServer } from '../core/grpc/server.ts';
import type { Logger } from '../core/log.ts';
import { listenIngestHttp } from './http.ts';
import { createIngestMetrics } from './metrics.ts';
import { createIngest, type IngestService } from './service.ts';
import { createIngestGrpcHandlers, GRPC_SERVER_OPTIONS, ingestServiceDefinition } from './transport/grpc.ts';

export const INGEST_SERVICE_NAME = 'phonebill.v1.Ingest';

export interface RunningIngest {
  grpcPort: number;
  httpPort: number;
  service: IngestService;
  /**
   * Graceful drain: refuses new calls, lets open streams finish for up to
   * INGEST_SHUTDOWN_GRACE_MS, then stops reading the rest; writes everything
   * received, answers every stream, closes HTTP. Safe to call twice.
   */
  stop(): Promise<void>;
}

export interface StartIngestOptions {
  config: Config;
  ch: ClickHouse;
  clock: Clock;
  log: Logger;
}

/** Applies pending migrations (idempotent), then listens on config.host:ingestPort (gRPC) and :ingestHttpPort (HTTP). */
export async function startIngest({ config, ch, clock, log }: StartIngestOptions): Promise<RunningIngest> {
  await migrateClickHouse(ch);
  const service = createIngest({ ch, clock, log, config, metrics: createIngestMetrics({ processMetrics: true }) });
  const handlers = createIngestGrpcHandlers(service, log);
  const grpcServer = createStandardServer(GRPC_SERVER_OPTIONS);
  grpcServer.server.addService(ingestServiceDefinition(), handlers.implementation);
  let healthy = true;
  const grpcPort = await bind(grpcServer.server, config.host, config.ingestPort);
  let http;
  try {
    http = await listenIngestHttp({ ch, metrics: service.metrics, log, healthy: () => healthy }, config.host, config.ingestHttpPort);
  } catch (err) {
    grpcServer.server.forceShutdown();
    throw err;
  }
  grpcServer.setServing(INGEST_SERVICE_NAME, 'SERVING');

  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= (async () => {
    healthy = false;
    grpcServer.setServing(INGEST_SERVICE_NAME, 'NOT_SERVING');
    const shutDown = new Promise<void>((res) => grpcServer.server.tryShutdown(() => res()));
    const open = handlers.openStreams();
    if (open > 0) log.info({ open, graceMs: config.ingestShutdownGraceMs }, 'draining: waiting for open streams');
    await within(handlers.idle(), config.ingestShutdownGraceMs);
    handlers.cutOpenStreams();
    await service.drain();
    // Every request is answered once drained; the wait only covers a client that never reads its answer.
    if (!(await within(shutDown, 5000))) grpcServer.server.forceShutdown();
    await http.close();
    log.info('ingest stopped');
  })());

  return { grpcPort, httpPort: http.port, service, stop };
}

/** Waits for p at most ms; true when p settled in time. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((res) => { timer = setTimeout(() => res(false), ms); });
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
