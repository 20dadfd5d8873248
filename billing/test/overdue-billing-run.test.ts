/**
 * The billing run's afterBills hook evaluates overdue state as of the run's
 * asOf and publishes it: real billing run (embedded ClickHouse, PostgreSQL),
 * real Redis under a prefix of the test's own, then payments through the
 * payment service with the overdue service's onPayment hook.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { silentLogger } from '../../core/log.ts';
import { bucketOf, redisKeys } from '../../core/redis/layout.ts';
import { storeCalls } from '../../test/calls.ts';
import { createBillingRunner } from '../run/run-billing.ts';
import { createPaymentRepository } from '../adapters/postgres/index.ts';
import { createRedisClient } from '../adapters/redis/index.ts';
import { createOverdueService, type OverdueService } from '../overdue/index.ts';
import { createPaymentService } from '../payments/index.ts';
import { addSubscribers, billingHarness, tariff, TEST_CONFIG, type Harness } from './support/harness.ts';
import { call } from './support/calls.ts';
import { deletePrefix, SHARED_REDIS_URL, testPrefix, until } from './overdue-helpers.ts';

const NY = '+12125550100';
const PREMIUM = '+19005550100';
const DOMESTIC = '+13125550100';

let h: Harness | undefined;
let redis: Redis | undefined;
let admin: Redis | undefined;
let prefix = '';
let overdue: OverdueService | undefined;

afterEach(async () => {
  await overdue?.close();
  if (admin) await deletePrefix(admin, prefix);
  redis?.disconnect();
  admin?.disconnect();
  await h?.close();
  h = redis = admin = overdue = undefined;
});

describe('runBilling({ asOf }) with the overdue hook', () => {
  it('blocks a subscriber once a run as of a time after the due date evaluates; 900 charges left unpaid do not block', async () => {
    h = await billingHarness({ now: '2024-02-15T07:00:00Z' });
    prefix = testPrefix();
    redis = createRedisClient({ url: SHARED_REDIS_URL, log: silentLogger() });
    admin = new Redis(SHARED_REDIS_URL);
    await until(async () => redis!.status === 'ready', 5000);
    overdue = createOverdueService({
      pool: h.db.pool, redis, clock: h.clock, log: silentLogger(),
      config: { redisKeyPrefix: prefix, overdueSweepSeconds: 60, redisRebuildCheckSeconds: 2 },
    });
    const run = createBillingRunner({
      store: h.store, ch: h.ch, clock: h.clock, log: silentLogger(), tariff, config: TEST_CONFIG,
      afterBills: (asOfMs) => overdue!.evaluateAndPublish(asOfMs),
    });
    const [subscriberId] = await addSubscribers(h.db.pool, [{ phoneNumber: NY, subscriptionDate: '2024-01-15', timeZone: 'America/New_York' }]);
    await storeCalls(h.ch, [
      call(NY, DOMESTIC, '2024-01-20T15:00:00Z', 10 * 60_000), // 10 min × 5 ¢ = 50 ¢
      call(NY, PREMIUM, '2024-01-21T15:00:00Z', 5 * 60_000), // 5 min × 199 ¢ = 995 ¢
    ]);
    const blockedKey = redisKeys(prefix).blocked(bucketOf(NY));

    // Period 0 (2024-01-15 → 02-15 local) billed as of 02-15T07:00Z, due 21 days later.
    const first = await run({ asOf: '2024-02-15T07:00:00Z' });
    expect(first.billsCreated).toBe(1);
    expect(first.timingsMs.afterBills).toBeTypeOf('number');
    const { rows: [bill] } = await h.db.pool.query(`SELECT id, total_cents, due_at, status FROM bills WHERE subscriber_id = $1`, [subscriberId]);
    expect({ total: bill.total_cents, due: bill.due_at.toISOString(), status: bill.status }).toEqual({ total: 3045, due: '2024-03-07T07:00:00.000Z', status: 'open' });
    expect(await admin.sismember(blockedKey, NY)).toBe(0);

    // A run as of a minute after the due time (nothing new to bill) evaluates overdue as of its asOf.
    h.clock.set('2024-03-07T07:01:00Z');
    expect((await run({ asOf: '2024-03-07T07:01:00Z' })).billsCreated).toBe(0);
    expect(await admin.sismember(blockedKey, NY)).toBe(1);
    expect((await h.db.pool.query(`SELECT status FROM bills WHERE id = $1`, [bill.id])).rows[0].status).toBe('overdue');

    // Paying the non-premium part (2050) unblocks before record() resolves; the 995 ¢ of 900 calls stay unpaid.
    const payments = createPaymentService({
      repo: createPaymentRepository(h.db.pool), clock: h.clock,
      onRecorded: (r) => overdue!.onPayment({ subscriberId: r.payment.subscriberId }),
    });
    const r = await payments.record({ billId: bill.id, amountCents: 2049, idempotencyKey: 'p1' });
    expect(r.bill).toEqual({ id: bill.id, totalCents: 3045, paidCents: 2049, status: 'overdue' });
    expect(await admin.sismember(blockedKey, NY)).toBe(1);
    await payments.record({ billId: bill.id, amountCents: 1, idempotencyKey: 'p2' });
    expect(await admin.sismember(blockedKey, NY)).toBe(0);
    // The next run or sweep agrees: overdue (995 ¢ owed) but not blocked.
    expect(await overdue.evaluateAndPublish()).toMatchObject({ blocked: 0, published: { blocked: 0, unblocked: 0 } });
    expect((await h.db.pool.query(`SELECT status, total_cents - paid_cents AS balance FROM bills WHERE id = $1`, [bill.id])).rows[0]).toEqual({ status: 'overdue', balance: 995 });
  });
});
