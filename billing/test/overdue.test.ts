/**
 * Overdue state against real PostgreSQL and the shared local Redis (a key
 * prefix per test): who is blocked (900-only debt never), bill statuses,
 * credit carried to a newly issued bill, publication to the bucketed sets with
 * one change message per change, and the sweep on an injected clock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { fixedClock } from '../../core/clock.ts';
import { silentLogger } from '../../core/log.ts';
import { bucketOf, redisKeys } from '../../core/redis/layout.ts';
import { freshPostgres, type FreshPostgres } from '../../test/pg.ts';
import { createRedisClient } from '../adapters/redis/index.ts';
import { billStatus, blocksService, createOverdueService, premiumCentsOf, type OverdueService } from '../overdue/index.ts';
import { applyPayment } from '../payments/index.ts';
import { insertBill, insertSubscriber, NY_PERIODS } from './pg-fixtures.ts';
import { deletePrefix, listen, readSet, SHARED_REDIS_URL, testPrefix, until } from './overdue-helpers.ts';

const A = '+12125550101';
const B = '+12125550102';
const C = '+12125550103';
const monthly = (amountCents = 2000) => ({ kind: 'monthly_service', description: 'Monthly service', calls: 0, billableSeconds: 0, amountCents });
const premium = (amountCents: number) => ({ kind: 'premium', description: 'Premium (pay-per-call)', calls: 1, billableSeconds: 600, amountCents });

interface Ctx { db: FreshPostgres; redis: Redis; admin: Redis; prefix: string; overdue: OverdueService; clock: ReturnType<typeof fixedClock> }
let ctx: Ctx | undefined;
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  if (ctx) {
    await ctx.overdue.close();
    await deletePrefix(ctx.admin, ctx.prefix);
    ctx.redis.disconnect();
    ctx.admin.disconnect();
    await ctx.db.close();
    ctx = undefined;
  }
});

async function setup(now = '2024-05-01T12:00:00Z', sweepSeconds = 60): Promise<Ctx> {
  const db = await freshPostgres({ prefix: 'overdue' });
  const prefix = testPrefix();
  const redis = createRedisClient({ url: SHARED_REDIS_URL, log: silentLogger() });
  const admin = new Redis(SHARED_REDIS_URL);
  await until(async () => redis.status === 'ready', 5000);
  const clock = fixedClock(now);
  const overdue = createOverdueService({
    pool: db.pool, redis, clock, log: silentLogger(),
    config: { redisKeyPrefix: prefix, overdueSweepSeconds: sweepSeconds, redisRebuildCheckSeconds: 2 },
  });
  ctx = { db, redis, admin, prefix, overdue, clock };
  return ctx;
}

const statuses = async (c: Ctx) => (await c.db.pool.query<{ period_index: number; status: string; paid_cents: number }>(
  `SELECT b.period_index, s.phone_number, b.status, b.paid_cents FROM bills b JOIN subscribers s ON s.id = b.subscriber_id ORDER BY s.phone_number, b.period_index`)).rows;

describe('overdue rules (pure)', () => {
  it('status is paid at balance ≤ 0, overdue once the due time has passed (strictly), else open', () => {
    const due = Date.parse('2024-03-07T06:00:00Z');
    expect(billStatus({ totalCents: 2000, paidCents: 2000, dueAtMs: due }, due + 1)).toBe('paid');
    expect(billStatus({ totalCents: 2000, paidCents: 2500, dueAtMs: due }, due + 1)).toBe('paid');
    expect(billStatus({ totalCents: 0, paidCents: 0, dueAtMs: due }, due - 1)).toBe('paid');
    expect(billStatus({ totalCents: 2000, paidCents: 1999, dueAtMs: due }, due + 1)).toBe('overdue');
    expect(billStatus({ totalCents: 2000, paidCents: 1999, dueAtMs: due }, due)).toBe('open');
  });

  it('payments cover non-premium charges first; unpaid premium alone never blocks', () => {
    const lines = [monthly(2000), premium(1990), { kind: 'late_usage', amountCents: 500, premiumCents: 398 }];
    expect(premiumCentsOf(lines)).toBe(2388);
    const bill = { totalCents: 4490, premiumCents: 2388, dueAtMs: 0 };
    expect(blocksService({ ...bill, paidCents: 0 }, 1)).toBe(true);
    expect(blocksService({ ...bill, paidCents: 2101 }, 1)).toBe(true);
    expect(blocksService({ ...bill, paidCents: 2102 }, 1)).toBe(false);
    expect(blocksService({ ...bill, paidCents: 0 }, 0)).toBe(false);
  });

  it('an overpayment moves forward to later bills that owe, oldest first, never backwards', () => {
    const bills = [
      { id: 'b0', periodIndex: 0, totalCents: 2000, paidCents: 0, dueAtMs: 10, status: 'overdue' as const },
      { id: 'b1', periodIndex: 1, totalCents: 2000, paidCents: 0, dueAtMs: 20, status: 'overdue' as const },
      { id: 'b2', periodIndex: 2, totalCents: 3000, paidCents: 2500, dueAtMs: 30, status: 'open' as const },
      { id: 'b3', periodIndex: 3, totalCents: 2000, paidCents: 0, dueAtMs: 40, status: 'open' as const },
    ];
    const e = applyPayment(bills, 'b1', 4000, 25);
    expect(e.moves).toEqual([{ fromBillId: 'b1', toBillId: 'b2', amountCents: 500 }, { fromBillId: 'b1', toBillId: 'b3', amountCents: 1500 }]);
    expect(e.bill).toEqual({ id: 'b1', totalCents: 2000, paidCents: 2000, status: 'paid' });
    expect(e.changed).toEqual([
      { id: 'b1', paidCents: 2000, status: 'paid' },
      { id: 'b2', paidCents: 3000, status: 'paid' },
      { id: 'b3', paidCents: 1500, status: 'open' },
    ]);
    const left = applyPayment(bills, 'b3', 2600, 25);
    expect(left.moves).toEqual([]);
    expect(left.bill).toEqual({ id: 'b3', totalCents: 2000, paidCents: 2600, status: 'paid' });
  });
});

describe('evaluateAndPublish', () => {
  it('blocks a subscriber whose bill is past due and unpaid, in PostgreSQL and in the Redis buckets, with one message per change', async () => {
    const c = await setup();
    const a = await insertSubscriber(c.db.pool, { phoneNumber: A });
    const b = await insertSubscriber(c.db.pool, { phoneNumber: B });
    await insertBill(c.db.pool, { subscriberId: a, ...NY_PERIODS[1] }); // due 2024-04-05: passed
    await insertBill(c.db.pool, { subscriberId: b, ...NY_PERIODS[2] }); // due 2024-05-06: not yet
    const changes = await listen(SHARED_REDIS_URL, c.prefix);
    cleanups.push(changes.close);

    const s = await c.overdue.evaluateAndPublish();
    expect(s).toEqual({ asOf: '2024-05-01T12:00:00.000Z', blocked: 1, statusChanges: 1, creditMoves: 0, published: { blocked: 1, unblocked: 0 } });
    expect(await statuses(c)).toEqual([
      { period_index: 1, phone_number: A, status: 'overdue', paid_cents: 0 },
      { period_index: 2, phone_number: B, status: 'open', paid_cents: 0 },
    ]);
    expect(await readSet(c.admin, c.prefix, 'blocked')).toEqual([A]);
    expect(await c.admin.sismember(redisKeys(c.prefix).blocked(bucketOf(A)), A)).toBe(1);
    await changes.waitFor((m) => m === `block ${A}`);

    // Nothing changed: nothing written, nothing published.
    expect((await c.overdue.evaluateAndPublish()).published).toEqual({ blocked: 0, unblocked: 0 });

    // B's due time passes.
    c.clock.set('2024-05-06T05:00:00.001Z');
    expect(await c.overdue.evaluateAndPublish()).toMatchObject({ blocked: 2, statusChanges: 1, published: { blocked: 1, unblocked: 0 } });
    expect(await readSet(c.admin, c.prefix, 'blocked')).toEqual([A, B]);
    await changes.waitFor((m) => m === `block ${B}`);
    expect(changes.messages).toEqual([`block ${A}`, `block ${B}`]);
  });

  it('never blocks for unpaid pay-per-call (900) charges alone: the bill is overdue but the subscriber is not blocked', async () => {
    const c = await setup();
    const a = await insertSubscriber(c.db.pool, { phoneNumber: A });
    const b = await insertSubscriber(c.db.pool, { phoneNumber: B });
    const d = await insertSubscriber(c.db.pool, { phoneNumber: C });
    // A paid the monthly charge, not the 900 call.
    await insertBill(c.db.pool, { subscriberId: a, ...NY_PERIODS[1], lines: [monthly(2000), premium(1990)], paidCents: 2000 });
    // B paid 1 cent less than the non-premium part: blocked.
    await insertBill(c.db.pool, { subscriberId: b, ...NY_PERIODS[1], lines: [monthly(2000), premium(1990)], paidCents: 1999 });
    // C's late-usage line declares its 900 share: only that share is unpaid.
    await insertBill(c.db.pool, { subscriberId: d, ...NY_PERIODS[1], lines: [monthly(2000), { ...monthly(700), kind: 'late_usage', description: 'Late usage', premiumCents: 597 } as never], paidCents: 2103 });

    expect(await c.overdue.evaluateAndPublish()).toMatchObject({ blocked: 1 });
    expect(await readSet(c.admin, c.prefix, 'blocked')).toEqual([B]);
    expect((await statuses(c)).map((r) => r.status)).toEqual(['overdue', 'overdue', 'overdue']);
  });

  it('unblocks when a payment settles the debt, and leaves closed subscribers out', async () => {
    const c = await setup();
    const a = await insertSubscriber(c.db.pool, { phoneNumber: A });
    const b = await insertSubscriber(c.db.pool, { phoneNumber: B });
    const billA = await insertBill(c.db.pool, { subscriberId: a, ...NY_PERIODS[0] });
    await insertBill(c.db.pool, { subscriberId: b, ...NY_PERIODS[0] });
    await c.overdue.evaluateAndPublish();
    expect(await readSet(c.admin, c.prefix, 'blocked')).toEqual([A, B]);

    await c.db.pool.query(`UPDATE bills SET paid_cents = 2000 WHERE id = $1`, [billA]);
    await c.db.pool.query(`UPDATE subscribers SET status = 'closed' WHERE id = $1`, [b]);
    expect(await c.overdue.evaluateAndPublish()).toMatchObject({ blocked: 0, statusChanges: 1, published: { blocked: 0, unblocked: 2 } });
    expect(await readSet(c.admin, c.prefix, 'blocked')).toEqual([]);
    expect((await statuses(c)).map((r) => r.status)).toEqual(['paid', 'overdue']);
  });

  it('carries an overpaid bill\'s credit to the bill issued after it, and records the move', async () => {
    const c = await setup();
    const a = await insertSubscriber(c.db.pool, { phoneNumber: A });
    const b0 = await insertBill(c.db.pool, { subscriberId: a, ...NY_PERIODS[0], paidCents: 2600, status: 'paid' });
    const b1 = await insertBill(c.db.pool, { subscriberId: a, ...NY_PERIODS[1] });
    const b2 = await insertBill(c.db.pool, { subscriberId: a, ...NY_PERIODS[2] });
    expect(await c.overdue.evaluateAndPublish()).toMatchObject({ creditMoves: 1, blocked: 1 });
    expect(await statuses(c)).toEqual([
      { period_index: 0, phone_number: A, status: 'paid', paid_cents: 2000 },
      { period_index: 1, phone_number: A, status: 'overdue', paid_cents: 600 },
      { period_index: 2, phone_number: A, status: 'open', paid_cents: 0 },
    ]);
    const moves = await c.db.pool.query(`SELECT from_bill_id, to_bill_id, amount_cents, payment_id FROM credit_transfers`);
    expect(moves.rows).toEqual([{ from_bill_id: b0, to_bill_id: b1, amount_cents: 600, payment_id: null }]);
    expect(b2).toBeTruthy();
    // Idempotent: nothing more to move.
    expect(await c.overdue.evaluateAndPublish()).toMatchObject({ creditMoves: 0 });
  });

  it('spreads credit over several new bills in order and stops when it runs out', async () => {
    const c = await setup();
    const a = await insertSubscriber(c.db.pool, { phoneNumber: A });
    await insertBill(c.db.pool, { subscriberId: a, ...NY_PERIODS[0], paidCents: 4500, status: 'paid' });
    await insertBill(c.db.pool, { subscriberId: a, ...NY_PERIODS[1] });
    await insertBill(c.db.pool, { subscriberId: a, ...NY_PERIODS[2] });
    expect(await c.overdue.evaluateAndPublish()).toMatchObject({ creditMoves: 2, blocked: 0 });
    expect((await statuses(c)).map((r) => [r.status, r.paid_cents])).toEqual([['paid', 2000], ['paid', 2000], ['open', 500]]);
  });

  it('marks a bill with nothing to pay as paid before its due time, without blocking anyone', async () => {
    const c = await setup();
    const a = await insertSubscriber(c.db.pool, { phoneNumber: A });
    await insertBill(c.db.pool, { subscriberId: a, ...NY_PERIODS[2], lines: [monthly(0)] }); // due 2024-05-06, total 0
    expect(await c.overdue.evaluateAndPublish()).toMatchObject({ blocked: 0, statusChanges: 1 });
    expect(await statuses(c)).toEqual([{ period_index: 2, phone_number: A, status: 'paid', paid_cents: 0 }]);
  });

  it('never moves the evaluation instant backwards: a run as of a future instant stays blocked at the next sweep', async () => {
    const c = await setup();
    const a = await insertSubscriber(c.db.pool, { phoneNumber: A });
    await insertBill(c.db.pool, { subscriberId: a, ...NY_PERIODS[2] }); // due 2024-05-06
    expect(await c.overdue.evaluateAndPublish(Date.parse('2024-06-01T00:00:00Z'))).toMatchObject({ asOf: '2024-06-01T00:00:00.000Z', blocked: 1 });
    // The clock still says 2024-05-01.
    expect(await c.overdue.evaluateAndPublish()).toMatchObject({ asOf: '2024-06-01T00:00:00.000Z', blocked: 1, published: { blocked: 0, unblocked: 0 } });
    expect(await readSet(c.admin, c.prefix, 'blocked')).toEqual([A]);
  });

  it('the sweep blocks a subscriber within one interval of the due time passing (injected clock)', async () => {
    const c = await setup('2024-05-06T04:59:59Z', 1);
    const a = await insertSubscriber(c.db.pool, { phoneNumber: A });
    await insertBill(c.db.pool, { subscriberId: a, ...NY_PERIODS[2] }); // due 2024-05-06T05:00:00Z
    c.overdue.startSweep();
    await new Promise((r) => setTimeout(r, 1300)); // at least one sweep before the due time
    expect(await readSet(c.admin, c.prefix, 'blocked')).toEqual([]);
    expect((await statuses(c))[0]!.status).toBe('open');

    c.clock.set('2024-05-06T05:00:00.001Z');
    const elapsed = await until(async () => (await c.admin.sismember(redisKeys(c.prefix).blocked(bucketOf(A)), A)) === 1, 5000);
    expect(elapsed).toBeLessThan(1500);
    expect((await statuses(c))[0]!.status).toBe('overdue');
  });
});
