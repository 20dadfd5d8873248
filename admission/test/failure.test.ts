/**
 * Redis failures, against a redis-server of the test's own (no persistence)
 * that it flushes, kills and restarts: the service keeps answering from its
 * replica, says how old it is, and resyncs when the state is back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningAdmission } from '../server.ts';
import {
  admissionClient, canPlaceCall, change, healthStatus, privateRedis, testAdmission, uniquePrefix, until, writeState,
  type AdmissionClient, type PrivateRedis,
} from './support.ts';

const ACTIVE = '+12125550101';
const BLOCKED = '+12125550102';
const CA = '+14165550123';

const cleanup: (() => Promise<unknown> | void)[] = [];
afterEach(async () => { for (const f of cleanup.splice(0).reverse()) await f(); });

async function setup(opts: { state?: boolean; down?: boolean } = {}) {
  const redis: PrivateRedis = await privateRedis();
  cleanup.push(() => redis.close());
  const prefix = uniquePrefix();
  if (opts.state !== false) await writeState(redis.client(), prefix, { subs: [ACTIVE, BLOCKED], blocked: [BLOCKED], epoch: 'e1' });
  if (opts.down) await redis.kill();
  const adm: RunningAdmission = await testAdmission({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix });
  const client: AdmissionClient = admissionClient(adm.grpcPort);
  cleanup.push(() => adm.stop(), () => client.close());
  if (opts.state !== false && !opts.down) await adm.firstLoad;
  return { redis, prefix, adm, client };
}

const healthz = async (adm: RunningAdmission) => (await (await fetch(`http://127.0.0.1:${adm.httpPort}/healthz`)).json()) as Record<string, unknown>;
const metric = async (adm: RunningAdmission, name: string) => {
  const text = await (await fetch(`http://127.0.0.1:${adm.httpPort}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
};

/** Answered, and well within a short deadline. */
async function promptly(client: AdmissionClient, source: string, target: string) {
  const t0 = performance.now();
  const res = await canPlaceCall(client, source, target, 250);
  return { ...res, fast: performance.now() - t0 < 250 };
}

describe('Redis data loss (FLUSHALL)', () => {
  it('keeps answering from the last replica with its age exposed, then resyncs on the new epoch', async () => {
    const { redis, prefix, adm, client } = await setup();
    const c = redis.client();
    await c.flushall();
    await until(() => !adm.status().inSync && adm.status().redisEpoch === null, 3000, 'the missing epoch noticed');
    await new Promise((r) => setTimeout(r, 400));
    // Kept, not emptied: an empty replica would refuse every subscriber.
    expect(await canPlaceCall(client, BLOCKED, CA)).toEqual({ allowed: false, reason: 'OVERDUE' });
    expect(await canPlaceCall(client, ACTIVE, CA)).toEqual({ allowed: true, reason: 'ALLOWED' });
    expect(await healthStatus(adm.grpcPort)).toBe('SERVING');
    const h = await healthz(adm);
    expect(h).toMatchObject({ status: 'serving', loaded: true, inSync: false, epoch: 'e1', redisEpoch: null, subscribers: 2, blocked: 1 });
    expect(h.ageSeconds).toBeGreaterThanOrEqual(0.3);
    expect(await metric(adm, 'phonebill_admission_replica_age_seconds')).toBeGreaterThanOrEqual(0.3);
    expect(await metric(adm, 'phonebill_admission_replica_in_sync')).toBe(0);

    // The writer rebuilds under a new epoch (no message: the epoch check finds it).
    await writeState(c, prefix, { subs: [ACTIVE, BLOCKED], blocked: [ACTIVE], epoch: 'e2' });
    await until(() => adm.status().epoch === 'e2' && adm.status().inSync, 3000, 'resync on epoch e2');
    expect(await canPlaceCall(client, ACTIVE, CA)).toEqual({ allowed: false, reason: 'OVERDUE' });
    expect(await canPlaceCall(client, BLOCKED, CA)).toEqual({ allowed: true, reason: 'ALLOWED' });
    expect(adm.status().ageSeconds).toBeLessThan(1);
  });
});

describe('Redis killed', () => {
  it('answers from the replica within the deadline, exposes the age, and resyncs when Redis is back', async () => {
    const { redis, prefix, adm, client } = await setup();
    await redis.kill();
    await until(() => !adm.status().inSync && !adm.status().subscribedLink, 3000, 'the outage noticed');

    for (let i = 0; i < 20; i++) {
      expect(await promptly(client, BLOCKED, CA)).toEqual({ allowed: false, reason: 'OVERDUE', fast: true });
      expect(await promptly(client, ACTIVE, CA)).toEqual({ allowed: true, reason: 'ALLOWED', fast: true });
    }
    expect(await promptly(client, BLOCKED, '911')).toEqual({ allowed: true, reason: 'EMERGENCY', fast: true });
    expect(await healthStatus(adm.grpcPort)).toBe('SERVING');
    await until(() => (adm.status().ageSeconds ?? 0) >= 1, 3000, 'age ≥ 1 s');
    expect(await healthz(adm)).toMatchObject({ status: 'serving', inSync: false, subscribedLink: false, epoch: 'e1' });
    expect(await metric(adm, 'phonebill_admission_replica_age_seconds')).toBeGreaterThanOrEqual(1);

    // Back, but empty (no persistence): still the last replica, still stale.
    await redis.start();
    await until(() => adm.status().subscribedLink, 5000, 'resubscribed');
    await new Promise((r) => setTimeout(r, 300));
    expect(adm.status()).toMatchObject({ inSync: false, epoch: 'e1', redisEpoch: null });
    expect(await canPlaceCall(client, BLOCKED, CA)).toEqual({ allowed: false, reason: 'OVERDUE' });

    // Billing republishes: resynced, and changes flow again over the new subscription.
    const c = redis.client();
    await writeState(c, prefix, { subs: [ACTIVE, BLOCKED], epoch: 'e2', announce: true });
    await until(() => adm.status().epoch === 'e2' && adm.status().inSync, 3000, 'resync on epoch e2');
    expect(await canPlaceCall(client, BLOCKED, CA)).toEqual({ allowed: true, reason: 'ALLOWED' });
    await change(c, prefix, 'block', ACTIVE);
    await until(async () => (await canPlaceCall(client, ACTIVE, CA)).reason === 'OVERDUE', 2000, 'block after reconnect');
    expect(adm.status().ageSeconds).toBeLessThan(1);
  });

  it('a restart with the state intact resyncs on reconnect alone (changes made during the outage are picked up)', async () => {
    const { redis, prefix, adm, client } = await setup();
    await redis.kill();
    await until(() => !adm.status().subscribedLink, 3000, 'the outage noticed');
    await redis.start();
    // Same epoch, different content, no message: only the resync after the reconnect can see it.
    await writeState(redis.client(), prefix, { subs: [ACTIVE, BLOCKED], blocked: [ACTIVE, BLOCKED], epoch: 'e1' });
    await until(() => adm.status().loads === 2 && adm.status().inSync, 5000, 'reload after reconnect');
    expect(await canPlaceCall(client, ACTIVE, CA)).toEqual({ allowed: false, reason: 'OVERDUE' });
  });
});

describe('Redis unreachable from the start', () => {
  it('answers by the no-state policy promptly while NOT_SERVING, and loads once Redis has the state', async () => {
    const { redis, prefix, adm, client } = await setup({ state: false, down: true });
    expect(await healthStatus(adm.grpcPort)).toBe('NOT_SERVING');
    expect(await promptly(client, BLOCKED, CA)).toEqual({ allowed: true, reason: 'ALLOWED', fast: true });
    expect(await promptly(client, BLOCKED, '911')).toEqual({ allowed: true, reason: 'EMERGENCY', fast: true });
    expect(adm.status()).toMatchObject({ loaded: false, ageSeconds: null });

    await redis.start();
    await writeState(redis.client(), prefix, { subs: [ACTIVE, BLOCKED], blocked: [BLOCKED], epoch: 'e1' });
    await adm.firstLoad;
    expect(await healthStatus(adm.grpcPort)).toBe('SERVING');
    expect(await canPlaceCall(client, BLOCKED, CA)).toEqual({ allowed: false, reason: 'OVERDUE' });
  });
});
