/**
 * Test plumbing for admission: the Redis state written the way billing
 * writes it (core/redis/layout.ts), a real gRPC client, health checks, and
 * a private redis-server a test may kill and restart.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { Redis } from 'ioredis';
import { loadConfig } from '../../core/config.ts';
import { phonebillV1 } from '../../core/grpc/proto.ts';
import { silentLogger } from '../../core/log.ts';
import { systemClock } from '../../core/clock.ts';
import { bucketOf, redisKeys, type ChangeOp } from '../../core/redis/layout.ts';
import { uniqueName } from '../../test/helpers.ts';
import { deleteKeysWithPrefix } from '../../scripts/lib/redis.ts';

export { privateRedis, type PrivateRedis } from '../../scripts/lib/redis.ts';
import { startAdmission, type RunningAdmission } from '../server.ts';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const SHARED_REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

export const uniquePrefix = () => `${uniqueName('adm')}:`;

/** Subscribers, blocked numbers and an epoch, written bucket by bucket like the billing publisher. */
export async function writeState(redis: Redis, prefix: string, s: { subs: string[]; blocked?: string[]; epoch: string; announce?: boolean }): Promise<void> {
  const k = redisKeys(prefix);
  const p = redis.pipeline();
  for (const n of s.subs) p.sadd(k.subs(bucketOf(n)), n);
  for (const n of s.blocked ?? []) p.sadd(k.blocked(bucketOf(n)), n);
  p.set(k.epoch, s.epoch);
  if (s.announce) p.publish(k.changes, `resync ${s.epoch}`);
  await p.exec();
}

/** One change as the writer makes it: the set first, then the message. */
export async function change(redis: Redis, prefix: string, op: ChangeOp, number: string): Promise<void> {
  const k = redisKeys(prefix);
  const key = op === 'sub+' || op === 'sub-' ? k.subs(bucketOf(number)) : k.blocked(bucketOf(number));
  const p = redis.pipeline();
  if (op === 'sub+' || op === 'block') p.sadd(key, number);
  else p.srem(key, number);
  p.publish(k.changes, `${op} ${number}`);
  await p.exec();
}

/** Deletes every key under the prefix (tests on the shared Redis clean up after themselves). */
export const dropPrefix = deleteKeysWithPrefix;

export function testAdmission(env: Record<string, string>): Promise<RunningAdmission> {
  const config = loadConfig({
    REDIS_URL: SHARED_REDIS_URL,
    ADMISSION_PORT: '0',
    ADMISSION_HTTP_PORT: '0',
    ADMISSION_EPOCH_CHECK_MS: '100',
    ...env,
  });
  return startAdmission({ config, log: silentLogger(), clock: systemClock });
}

export interface CanPlaceCallResponse { allowed: boolean; reason: string }
export type AdmissionClient = grpc.Client & {
  CanPlaceCall(req: { source_number: string; target_number: string }, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: CanPlaceCallResponse) => void): void;
};

export function admissionClient(port: number): AdmissionClient {
  const { Admission } = phonebillV1();
  return new Admission(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as AdmissionClient;
}

export function canPlaceCall(client: AdmissionClient, source: string, target: string, deadlineMs = 5000): Promise<CanPlaceCallResponse> {
  return new Promise((resolve, reject) => {
    client.CanPlaceCall({ source_number: source, target_number: target }, { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/** The gRPC error a call ends with (fails the test if it succeeds). */
export async function callError(client: AdmissionClient, source: string, target: string): Promise<grpc.ServiceError> {
  try {
    const res = await canPlaceCall(client, source, target);
    throw new Error(`expected an error, got ${JSON.stringify(res)}`);
  } catch (e) {
    if ((e as grpc.ServiceError).code === undefined) throw e;
    return e as grpc.ServiceError;
  }
}

type HealthClient = grpc.Client & { Check(req: { service: string }, cb: (err: grpc.ServiceError | null, res: { status: string }) => void): void };

export async function healthStatus(port: number, service = ''): Promise<string> {
  const def = protoLoader.loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true });
  const Health = ((grpc.loadPackageDefinition(def).grpc as grpc.GrpcObject).health as grpc.GrpcObject).v1 as grpc.GrpcObject;
  const client = new (Health.Health as grpc.ServiceClientConstructor)(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as HealthClient;
  try {
    return await new Promise((resolve, reject) => client.Check({ service }, (err, res) => (err ? reject(err) : resolve(res.status))));
  } finally {
    client.close();
  }
}

/** Polls `probe` until it returns true; the elapsed ms, or throws after `timeoutMs`. */
export async function until(probe: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition', everyMs = 5): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await probe()) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => (everyMs > 0 ? setTimeout(r, everyMs) : setImmediate(r)));
  }
}

/** Service names the server lists through grpc.reflection.v1 (what grpcurl asks first). */
export async function reflectedServices(port: number): Promise<string[]> {
  const protoPath = path.join(path.dirname(createRequire(import.meta.url).resolve('@grpc/reflection/package.json')), 'build/proto/grpc/reflection/v1/reflection.proto');
  const def = protoLoader.loadSync(protoPath, { keepCase: true, defaults: true, oneofs: true });
  const v1 = (((grpc.loadPackageDefinition(def).grpc as grpc.GrpcObject).reflection as grpc.GrpcObject).v1 as grpc.GrpcObject);
  const client = new (v1.ServerReflection as grpc.ServiceClientConstructor)(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    ServerReflectionInfo(): grpc.ClientDuplexStream<{ list_services: string }, { list_services_response?: { service: { name: string }[] } }>;
  };
  try {
    return await new Promise((resolve, reject) => {
      const call = client.ServerReflectionInfo();
      call.on('data', (r: { list_services_response?: { service: { name: string }[] } }) => { resolve((r.list_services_response?.service ?? []).map((x) => x.name).sort()); call.end(); });
      call.on('error', reject);
      call.write({ list_services: '' });
    });
  } finally {
    client.close();
  }
}

