/**
 * The admission service over real gRPC (port 0) against the shared local
 * Redis, each test under its own key prefix, the state written the way the
 * billing publisher writes it.
 */
import { spawn } from 'node:child_process';
import readline from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bucketOf } from '../../core/redis/layout.ts';
import type { RunningAdmission } from '../server.ts';
import {
  admissionClient, callError, reflectedServices, REPO_ROOT, canPlaceCall, change, dropPrefix, healthStatus, SHARED_REDIS_URL, testAdmission, uniquePrefix, until, writeState,
  type AdmissionClient,
} from './support.ts';

const ACTIVE = '+12125550101';
const BLOCKED = '+12125550102';
const UNKNOWN = '+12125550103';
const CA = '+14165550123';

let redis: Redis;
const cleanup: (() => Promise<unknown> | void)[] = [];

beforeAll(() => { redis = new Redis(SHARED_REDIS_URL); });
afterEach(async () => { for (const f of cleanup.splice(0).reverse()) await f(); });
afterAll(async () => { await redis.quit(); });

async function start(env: Record<string, string> = {}, state?: { subs: string[]; blocked?: string[]; epoch: string }) {
  const prefix = uniquePrefix();
  if (state) await writeState(redis, prefix, state);
  const adm = await testAdmission({ REDIS_KEY_PREFIX: prefix, ...env });
  const client = admissionClient(adm.grpcPort);
  cleanup.push(() => dropPrefix(redis, prefix), () => adm.stop(), () => client.close());
  if (state) await adm.firstLoad;
  return { prefix, adm, client };
}

const metricsText = async (adm: RunningAdmission) => (await fetch(`http://127.0.0.1:${adm.httpPort}/metrics`)).text();
const healthz = async (adm: RunningAdmission) => {
  const r = await fetch(`http://127.0.0.1:${adm.httpPort}/healthz`);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};

describe('CanPlaceCall decisions over gRPC', () => {
  it('answers every decision path with the exact reason', async () => {
    const { client } = await start({}, { subs: [ACTIVE, BLOCKED], blocked: [BLOCKED], epoch: 'e1' });
    const cases: [string, string, boolean, string][] = [
      [ACTIVE, CA, true, 'ALLOWED'],
      [ACTIVE, '411', true, 'ALLOWED'],
      [BLOCKED, CA, false, 'OVERDUE'],
      [BLOCKED, '411', false, 'OVERDUE'],
      [BLOCKED, '611', true, 'ALLOWED'],
      [BLOCKED, '988', true, 'ALLOWED'],
      [BLOCKED, '911', true, 'EMERGENCY'],
      [UNKNOWN, '911', true, 'EMERGENCY'],
      ['not a number', '911', true, 'EMERGENCY'],
      [UNKNOWN, CA, false, 'UNKNOWN_SUBSCRIBER'],
      [ACTIVE, '+441632960000', false, 'OUT_OF_AREA'],
      [BLOCKED, '+525512345678', false, 'OUT_OF_AREA'],
    ];
    for (const [source, target, allowed, reason] of cases) {
      expect({ source, target, ...(await canPlaceCall(client, source, target)) }).toEqual({ source, target, allowed, reason });
    }
  });

  it('refuses malformed numbers with INVALID_ARGUMENT naming the field', async () => {
    const { client } = await start({}, { subs: [ACTIVE], epoch: 'e1' });
    const cases: [string, string, string][] = [
      ['212-555-0101', CA, 'source_number: must be E.164 +1NPANXXXXXX'],
      ['', CA, 'source_number: is required'],
      ['611', CA, 'source_number: a service code (611) cannot place calls'],
      [ACTIVE, '', 'target_number: is required'],
      [ACTIVE, '+1999555010', 'target_number: must be E.164 +1NPANXXXXXX'],
      [ACTIVE, '+19995550100', 'target_number: unassigned area code 999'],
      ['garbage', 'garbage', 'target_number: must be E.164 +1NPANXXXXXX'],
    ];
    for (const [source, target, details] of cases) {
      const err = await callError(client, source, target);
      expect({ source, target, code: err.code, details: err.details }).toEqual({ source, target, code: grpc.status.INVALID_ARGUMENT, details });
    }
  });

  it('allows unknown callers when ADMISSION_UNKNOWN_SUBSCRIBER=allow', async () => {
    const { client } = await start({ ADMISSION_UNKNOWN_SUBSCRIBER: 'allow' }, { subs: [BLOCKED], blocked: [BLOCKED], epoch: 'e1' });
    expect(await canPlaceCall(client, UNKNOWN, CA)).toEqual({ allowed: true, reason: 'ALLOWED' });
    expect(await canPlaceCall(client, BLOCKED, CA)).toEqual({ allowed: false, reason: 'OVERDUE' });
  });
});

describe('before any state is loaded', () => {
  it('is NOT_SERVING and answers by the default policy (allow); turns SERVING when the state appears', async () => {
    const { prefix, adm, client } = await start();
    expect(await healthStatus(adm.grpcPort)).toBe('NOT_SERVING');
    expect(await healthStatus(adm.grpcPort, 'phonebill.v1.Admission')).toBe('NOT_SERVING');
    const h = await healthz(adm);
    expect(h.status).toBe(503);
    expect(h.body).toMatchObject({ status: 'no_state', loaded: false, ageSeconds: null, noStatePolicy: 'allow' });
    expect(await canPlaceCall(client, BLOCKED, CA)).toEqual({ allowed: true, reason: 'ALLOWED' });
    expect(await canPlaceCall(client, BLOCKED, '911')).toEqual({ allowed: true, reason: 'EMERGENCY' });
    expect(await canPlaceCall(client, BLOCKED, '+441632960000')).toEqual({ allowed: false, reason: 'OUT_OF_AREA' });
    expect((await callError(client, 'x', CA)).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(await metricsText(adm)).toContain('phonebill_admission_decisions_total{reason="ALLOWED",rule="no_state",allowed="true"} 1');

    // Found by the epoch check (100 ms here), no message needed.
    await writeState(redis, prefix, { subs: [ACTIVE, BLOCKED], blocked: [BLOCKED], epoch: 'e1' });
    await adm.firstLoad;
    expect(await healthStatus(adm.grpcPort)).toBe('SERVING');
    expect(await healthStatus(adm.grpcPort, 'phonebill.v1.Admission')).toBe('SERVING');
    expect(await canPlaceCall(client, BLOCKED, CA)).toEqual({ allowed: false, reason: 'OVERDUE' });
    const after = await healthz(adm);
    expect(after.status).toBe(200);
    expect(after.body).toMatchObject({ status: 'serving', loaded: true, epoch: 'e1', subscribers: 2, blocked: 1, subscribedLink: true });
  });

  it('answers REASON_UNSPECIFIED, not allowed, with ADMISSION_NO_STATE_POLICY=deny', async () => {
    const { client } = await start({ ADMISSION_NO_STATE_POLICY: 'deny' });
    expect(await canPlaceCall(client, ACTIVE, CA)).toEqual({ allowed: false, reason: 'REASON_UNSPECIFIED' });
    expect(await canPlaceCall(client, ACTIVE, '911')).toEqual({ allowed: true, reason: 'EMERGENCY' });
  });
});

describe('propagation of changes', () => {
  it('reaches the replica within 100 ms at p99 (200 changes, each timed until CanPlaceCall answers it)', async () => {
    const { prefix, client } = await start({}, { subs: [ACTIVE], epoch: 'e1' });
    const steps: { op: 'sub+' | 'block' | 'unblock' | 'sub-'; reason: string }[] = [
      { op: 'sub+', reason: 'ALLOWED' },
      { op: 'block', reason: 'OVERDUE' },
      { op: 'unblock', reason: 'ALLOWED' },
      { op: 'sub-', reason: 'UNKNOWN_SUBSCRIBER' },
    ];
    const times: number[] = [];
    for (let i = 0; i < 200; i++) {
      const number = `+1312555${String(1000 + Math.floor(i / 4)).padStart(4, '0')}`;
      const step = steps[i % 4]!;
      const t0 = performance.now();
      await change(redis, prefix, step.op, number);
      await until(async () => (await canPlaceCall(client, number, CA)).reason === step.reason, 2000, `${step.op} ${number}`, 0);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const p = (q: number) => times[Math.ceil(q * times.length) - 1]!;
    console.log(`propagation over 200 changes: p50 ${p(0.5).toFixed(2)} ms, p99 ${p(0.99).toFixed(2)} ms, max ${p(1).toFixed(2)} ms`);
    expect(p(0.99)).toBeLessThan(100);
  });

  it('applies a burst of 6,000 changes exactly (hash partitions grow on the way)', async () => {
    const { prefix, adm, client } = await start({}, { subs: [ACTIVE], epoch: 'e1' });
    const numbers = Array.from({ length: 5000 }, (_, i) => `+1${['212', '416', '604', '305'][i % 4]}555${String(i).padStart(4, '0')}`);
    const p = redis.pipeline();
    for (const n of numbers) p.sadd(`${prefix}subs:${bucketOf(n)}`, n).publish(`${prefix}changes`, `sub+ ${n}`);
    for (const n of numbers.slice(0, 1000)) p.sadd(`${prefix}blocked:${bucketOf(n)}`, n).publish(`${prefix}changes`, `block ${n}`);
    await p.exec();
    await until(() => adm.status().blocked === 1000, 5000, 'the last change');
    expect(adm.status()).toMatchObject({ subscribers: 5001, blocked: 1000, changesApplied: 6000 });
    expect(await canPlaceCall(client, numbers[0]!, CA)).toEqual({ allowed: false, reason: 'OVERDUE' });
    expect(await canPlaceCall(client, numbers[999]!, CA)).toEqual({ allowed: false, reason: 'OVERDUE' });
    expect(await canPlaceCall(client, numbers[1000]!, CA)).toEqual({ allowed: true, reason: 'ALLOWED' });
    expect(await canPlaceCall(client, numbers[4999]!, CA)).toEqual({ allowed: true, reason: 'ALLOWED' });
  });

  it('reloads fully on "resync <epoch>" (numbers gone from Redis go from the replica)', async () => {
    // Epoch checks every minute: only the message can trigger this reload.
    const { prefix, adm, client } = await start({ ADMISSION_EPOCH_CHECK_MS: '60000' }, { subs: [ACTIVE, BLOCKED], blocked: [BLOCKED], epoch: 'e1' });
    await dropPrefix(redis, prefix);
    await writeState(redis, prefix, { subs: [BLOCKED, UNKNOWN], epoch: 'e2', announce: true });
    await until(() => adm.status().epoch === 'e2', 2000, 'epoch e2');
    expect(await canPlaceCall(client, ACTIVE, CA)).toEqual({ allowed: false, reason: 'UNKNOWN_SUBSCRIBER' });
    expect(await canPlaceCall(client, BLOCKED, CA)).toEqual({ allowed: true, reason: 'ALLOWED' });
    expect(await canPlaceCall(client, UNKNOWN, CA)).toEqual({ allowed: true, reason: 'ALLOWED' });
    expect(adm.status()).toMatchObject({ loads: 2, subscribers: 2, blocked: 0 });
  });
});

describe('metrics, health and shutdown', () => {
  it('exports decisions by reason, the decision-time histogram, replica age and sizes', async () => {
    const { adm, client } = await start({}, { subs: [ACTIVE, BLOCKED], blocked: [BLOCKED], epoch: 'e1' });
    await canPlaceCall(client, BLOCKED, CA);
    await canPlaceCall(client, BLOCKED, CA);
    await canPlaceCall(client, BLOCKED, '611');
    await canPlaceCall(client, ACTIVE, '911');
    await callError(client, 'x', CA);
    const text = await metricsText(adm);
    expect(text).toContain('phonebill_admission_decisions_total{reason="OVERDUE",rule="overdue",allowed="false"} 2');
    expect(text).toContain('phonebill_admission_decisions_total{reason="ALLOWED",rule="overdue_exempt",allowed="true"} 1');
    expect(text).toContain('phonebill_admission_decisions_total{reason="EMERGENCY",rule="emergency",allowed="true"} 1');
    expect(text).toContain('phonebill_admission_invalid_total{field="source_number"} 1');
    expect(text).toContain('phonebill_admission_decision_seconds_bucket{le="+Inf"} 5');
    expect(text).toContain('phonebill_admission_decision_seconds_count 5');
    expect(text).toContain('phonebill_admission_decision_seconds_bucket{le="0.00001"}');
    expect(text).toContain('phonebill_admission_replica_subscribers 2');
    expect(text).toContain('phonebill_admission_replica_blocked 1');
    expect(text).toContain('phonebill_admission_state_loaded 1');
    expect(text).toMatch(/phonebill_admission_replica_age_seconds \d/);
    expect(text).toContain('phonebill_admission_replica_loads_total 1');
  });

  it('serves reflection: the phonebill services are listed', async () => {
    const { adm } = await start({}, { subs: [ACTIVE], epoch: 'e1' });
    expect(await reflectedServices(adm.grpcPort)).toContain('phonebill.v1.Admission');
  });

  it('stops gracefully: NOT_SERVING, then calls are refused; stop twice is fine', async () => {
    const { adm, client } = await start({}, { subs: [ACTIVE], epoch: 'e1' });
    expect(await canPlaceCall(client, ACTIVE, CA)).toEqual({ allowed: true, reason: 'ALLOWED' });
    await adm.stop();
    await adm.stop();
    const err = await callError(client, ACTIVE, CA);
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
  });

  it('runs as its own process: logs its ports, answers, exits 0 on SIGTERM', async () => {
    const prefix = uniquePrefix();
    cleanup.push(() => dropPrefix(redis, prefix));
    await writeState(redis, prefix, { subs: [ACTIVE, BLOCKED], blocked: [BLOCKED], epoch: 'e1' });
    const child = spawn(process.execPath, ['--import', 'tsx', 'admission/main.ts'], {
      cwd: REPO_ROOT,
      env: { ...process.env, REDIS_URL: SHARED_REDIS_URL, REDIS_KEY_PREFIX: prefix, ADMISSION_PORT: '0', ADMISSION_HTTP_PORT: '0', LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    cleanup.push(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
    const ports = await new Promise<{ grpcPort: number; httpPort: number }>((resolve, reject) => {
      readline.createInterface({ input: child.stdout! }).on('line', (line) => {
        const j = JSON.parse(line) as { msg?: string; grpcPort?: number; httpPort?: number };
        if (j.msg === 'admission listening') resolve({ grpcPort: j.grpcPort!, httpPort: j.httpPort! });
      });
      void exit.then((code) => reject(new Error(`admission exited ${code} before listening`)));
    });
    expect(ports.grpcPort).toBeGreaterThan(0);
    expect(ports.httpPort).toBeGreaterThan(0);
    const client: AdmissionClient = admissionClient(ports.grpcPort);
    try {
      await until(async () => (await healthStatus(ports.grpcPort)) === 'SERVING', 10_000, 'SERVING');
      expect(await canPlaceCall(client, BLOCKED, CA)).toEqual({ allowed: false, reason: 'OVERDUE' });
      const metrics = await (await fetch(`http://127.0.0.1:${ports.httpPort}/metrics`)).text();
      expect(metrics).toContain('phonebill_admission_process_resident_memory_bytes');
    } finally {
      client.close();
    }
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
  });
});
