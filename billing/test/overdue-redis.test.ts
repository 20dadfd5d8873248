/**
 * The admission state survives Redis: a private redis-server per test (no
 * persistence) is flushed, killed and restarted under a running overdue
 * service with its watchdog; the state must come back from PostgreSQL, in
 * full, within 10 s, announced by a new epoch and "resync <epoch>". And Redis
 * being down never fails a payment or an evaluation.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { fixedClock } from '../../core/clock.ts';
import { silentLogger } from '../../core/log.ts';
import { bucketOf, redisKeys } from '../../core/redis/layout.ts';
import { freshPostgres, type FreshPostgres } from '../../test/pg.ts';
import { createRedisClient } from '../adapters/redis/index.ts';
import { createOverdueService, publishingSubscriberRepository, type OverdueService } from '../overdue/index.ts';
import { createSubscriberRepository } from '../adapters/postgres/index.ts';
import { bearer, makeApp, NOW, token } from './api-helpers.ts';
import { insertBill, insertSubscriber, NY_PERIODS } from './pg-fixtures.ts';
import { insertManySubscribers, listen, privateRedis, readSet, until, type PrivateRedis } from './overdue-helpers.ts';

const PREFIX = 'pb:';
const CHECK_SECONDS = 2;

interface Ctx { db: FreshPostgres; server: PrivateRedis; redis: Redis; admin: Redis; overdue: OverdueService }
let ctx: Ctx | undefined;
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
  if (ctx) {
    await ctx.overdue.close();
    ctx.redis.disconnect();
    ctx.admin.disconnect();
    await ctx.server.close();
    await ctx.db.close();
    ctx = undefined;
  }
});

async function setup(): Promise<Ctx> {
  const db = await freshPostgres({ prefix: 'odredis' });
  const server = await privateRedis();
  const redis = createRedisClient({ url: server.url, log: silentLogger() });
  const admin = new Redis(server.url, { maxRetriesPerRequest: null });
  admin.on('error', () => {});
  await until(async () => redis.status === 'ready', 5000);
  const overdue = createOverdueService({
    pool: db.pool, redis, clock: fixedClock(NOW), log: silentLogger(),
    config: { redisKeyPrefix: PREFIX, overdueSweepSeconds: 60, redisRebuildCheckSeconds: CHECK_SECONDS },
  });
  ctx = { db, server, redis, admin, overdue };
  return ctx;
}

/** n subscribers, every 100th with an overdue unpaid bill; returns the numbers and the blocked ones. */
async function population(db: FreshPostgres, n: number): Promise<{ subs: string[]; blocked: string[] }> {
  const subs = await insertManySubscribers(db.pool, n);
  await db.pool.query(
    `INSERT INTO bills (subscriber_id, period_index, period_start, period_end, period_start_local, period_end_local,
       next_period_end, issued_at, due_at, currency, total_cents, watermark, lines)
     SELECT id, 0, $1, $2, $3, $4, $7, $5, $6, 'USD', 2000, $5, '[{"kind":"monthly_service","description":"Monthly service","calls":0,"billableSeconds":0,"amountCents":2000}]'
       FROM (SELECT id, row_number() OVER (ORDER BY phone_number) AS r FROM subscribers) s WHERE r % 100 = 1`,
    [NY_PERIODS[0].periodStart, NY_PERIODS[0].periodEnd, NY_PERIODS[0].periodStartLocal, NY_PERIODS[0].periodEndLocal, NY_PERIODS[0].issuedAt, NY_PERIODS[0].dueAt, NY_PERIODS[0].nextPeriodEnd],
  );
  return { subs, blocked: subs.filter((_, i) => i % 100 === 0) };
}

async function expectState(c: Ctx, want: { subs: string[]; blocked: string[] }) {
  expect(await readSet(c.admin, PREFIX, 'subs')).toEqual(want.subs);
  expect(await readSet(c.admin, PREFIX, 'blocked')).toEqual(want.blocked);
}

describe('watchdog', () => {
  it('publishes the whole state at start (epoch + resync) when Redis holds none', async () => {
    const c = await setup();
    const want = await population(c.db, 500);
    const changes = await listen(c.server.url, PREFIX);
    cleanups.push(changes.close);
    expect(await c.overdue.checkRedis()).toBe('rebuilt');
    const epoch = await c.admin.get(redisKeys(PREFIX).epoch);
    expect(epoch).toMatch(/^\d+-[0-9a-f]{8}$/);
    await changes.waitFor((m) => m === `resync ${epoch}`);
    await expectState(c, want);
    expect(await c.overdue.checkRedis()).toBe('ok');
  });

  it('rebuilds 10,000 subscribers within 10 s of a FLUSHALL, with a new epoch and "resync <epoch>"', async () => {
    const c = await setup();
    const want = await population(c.db, 10_000);
    c.overdue.startWatchdog();
    await until(async () => (await c.admin.exists(redisKeys(PREFIX).epoch)) === 1, 10_000);
    const before = await c.admin.get(redisKeys(PREFIX).epoch);
    await expectState(c, want);
    const changes = await listen(c.server.url, PREFIX);
    cleanups.push(changes.close);

    const t0 = performance.now();
    await c.admin.flushall();
    const resync = await changes.waitFor((m) => m.startsWith('resync '), 10_000);
    const elapsed = performance.now() - t0;
    if (process.env.SHOW_TIMINGS) console.log(`FLUSHALL → resync in ${Math.round(elapsed)} ms`);
    expect(elapsed).toBeLessThan(10_000);
    const after = await c.admin.get(redisKeys(PREFIX).epoch);
    expect(after).not.toBe(before);
    expect(resync).toBe(`resync ${after}`);
    await expectState(c, want);
  });

  it('rebuilds within 10 s after Redis restarts without persistence, without restarting the service', async () => {
    const c = await setup();
    const want = await population(c.db, 2_000);
    c.overdue.startWatchdog();
    await until(async () => (await c.admin.exists(redisKeys(PREFIX).epoch)) === 1, 10_000);

    const t0 = performance.now();
    await c.server.kill();
    await c.server.start();
    await until(async () => (await c.admin.exists(redisKeys(PREFIX).epoch)) === 1, 10_000, 20);
    expect(performance.now() - t0).toBeLessThan(10_000);
    await expectState(c, want);
  });
});

describe('Redis unreachable', () => {
  it('never fails a payment or an evaluation; the state is reconciled once Redis is back', async () => {
    const c = await setup();
    const phone = '+12125550177';
    const id = await insertSubscriber(c.db.pool, { phoneNumber: phone });
    const bill = await insertBill(c.db.pool, { subscriberId: id, ...NY_PERIODS[0] });
    c.overdue.startWatchdog();
    await until(async () => (await readSet(c.admin, PREFIX, 'blocked')).includes(phone), 10_000);

    await c.server.kill();
    await until(async () => c.redis.status !== 'ready', 5000);
    const { app } = makeApp(c.db, { onPaymentRecorded: (r) => c.overdue.onPayment({ subscriberId: r.payment.subscriberId }) });
    cleanups.push(() => app.close());
    const t0 = performance.now();
    const r = await app.inject({ method: 'POST', url: '/v1/payments', headers: bearer(await token('operator')), payload: { billId: bill, amountCents: 2000, idempotencyKey: 'offline-1' } });
    expect(r.statusCode).toBe(201);
    expect(r.json().bill.status).toBe('paid');
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(await c.overdue.evaluateAndPublish()).toMatchObject({ blocked: 0, published: 'deferred' });

    // Redis comes back empty: rebuilt; the payment's unblock is in the state.
    await c.server.start();
    await until(async () => (await c.admin.exists(redisKeys(PREFIX).epoch)) === 1, 10_000);
    await expectState(c, { subs: [phone], blocked: [] });
  });

  it('reconciles what a failed write missed when Redis kept its data', async () => {
    const c = await setup();
    const a = await insertSubscriber(c.db.pool, { phoneNumber: '+12125550181' });
    await insertBill(c.db.pool, { subscriberId: a, ...NY_PERIODS[0] });
    expect(await c.overdue.checkRedis()).toBe('rebuilt');
    await expectState(c, { subs: ['+12125550181'], blocked: ['+12125550181'] });
    // Writes lost while disconnected (or made behind billing's back): the check after a reconnect repairs them.
    await c.admin.srem(redisKeys(PREFIX).blocked(bucketOf('+12125550181')), '+12125550181');
    await c.admin.sadd(redisKeys(PREFIX).subs(7), '+19999999999');
    await c.redis.disconnect(true); // reconnect → marked dirty
    c.overdue.startWatchdog();
    await until(async () => (await readSet(c.admin, PREFIX, 'blocked')).length === 1, 10_000);
    await expectState(c, { subs: ['+12125550181'], blocked: ['+12125550181'] });
  });
});

describe('subscriber publication', () => {
  it('publishes a bulk import batch ("sub+" per new number) and numbers created by another process at the next sweep', async () => {
    const c = await setup();
    expect(await c.overdue.checkRedis()).toBe('rebuilt');
    const changes = await listen(c.server.url, PREFIX);
    cleanups.push(changes.close);
    const repo = publishingSubscriberRepository(createSubscriberRepository(c.db.pool), c.overdue);
    const rows = ['+12125550191', '+12125550192'].map((phoneNumber) => ({ phoneNumber, subscriptionDate: '2024-01-15', timeZone: 'America/New_York', plan: 'standard' }));
    expect(await repo.insertMany(rows)).toEqual(new Set(['+12125550191', '+12125550192']));
    expect(await readSet(c.admin, PREFIX, 'subs')).toEqual(['+12125550191', '+12125550192']);
    await changes.waitFor((m) => m === 'sub+ +12125550192');

    // Another process inserts directly: the sweep picks it up.
    await insertSubscriber(c.db.pool, { phoneNumber: '+12125550193' });
    await c.overdue.evaluateAndPublish();
    expect(await readSet(c.admin, PREFIX, 'subs')).toEqual(['+12125550191', '+12125550192', '+12125550193']);
    await changes.waitFor((m) => m === 'sub+ +12125550193');
    expect(changes.messages).toEqual(['sub+ +12125550191', 'sub+ +12125550192', 'sub+ +12125550193']);
  });

  it('publishes a subscriber created through the API before the 201', async () => {
    const c = await setup();
    expect(await c.overdue.checkRedis()).toBe('rebuilt');
    const { app } = makeApp(c.db, { onSubscriberCreated: (s) => c.overdue.onSubscriberCreated(s) });
    cleanups.push(() => app.close());
    const r = await app.inject({
      method: 'POST', url: '/v1/subscribers', headers: bearer(await token('operator')),
      payload: { phoneNumber: '+13125550100', subscriptionDate: '2024-02-29', timeZone: 'America/Chicago' },
    });
    expect(r.statusCode).toBe(201);
    expect(await readSet(c.admin, PREFIX, 'subs')).toEqual(['+13125550100']);
  });
});
