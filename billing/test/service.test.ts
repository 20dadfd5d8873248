/**
 * billing/service.ts against real PostgreSQL and ClickHouse: a bill's
 * itemized calls (reproducible from the watermarks, paginated, late calls
 * flagged) and the node-cron schedule running the billing run.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../core/log.ts';
import { storeCalls } from '../../test/calls.ts';
import { createBillRepository } from '../adapters/postgres/index.ts';
import { createBilling, type Billing } from '../service.ts';
import { addSubscribers, billingHarness, tariff, TEST_CONFIG, type Harness } from './support/harness.ts';
import { call } from './support/calls.ts';

const NY = '+12125550100';
const CHI = '+13125550100';

let x: Harness | undefined;
let billing: Billing | undefined;
afterEach(async () => {
  await billing?.close();
  billing = undefined;
  await x?.close();
  x = undefined;
});

const service = (h: Harness, schedule?: string) =>
  createBilling({ pool: h.db.pool, ch: h.ch, clock: h.clock, log: silentLogger(), tariff, config: { ...TEST_CONFIG, billingSchedule: schedule } });

describe('itemized calls of a bill', () => {
  it('lists the period calls up to the watermark, then the late calls, page by page, and the same list every time', async () => {
    x = await billingHarness({ now: '2024-02-15T06:00:00Z' });
    const [sub] = await addSubscribers(x.db.pool, [{ phoneNumber: NY, subscriptionDate: '2024-01-15', timeZone: 'America/New_York' }]);
    const a = call(NY, CHI, '2024-01-20T15:00:00Z', 61_000, { id: 'a' });
    const b = call(NY, CHI, '2024-01-21T15:00:00Z', 30_000, { id: 'b' });
    const c = call(NY, CHI, '2024-01-22T15:00:00Z', 6_000, { id: 'c' });
    // Arrives after bill 0's watermark: late usage on bill 1, itemized there.
    const late = call(NY, CHI, '2024-01-23T15:00:00Z', 120_000, { id: 'late', ingested: '2024-02-20T00:00:00Z' });
    const feb = call(NY, CHI, '2024-02-20T15:00:00Z', 60_000, { id: 'feb' });
    await storeCalls(x.ch, [a, b, c]);
    billing = service(x);
    expect((await billing.runBilling({ asOf: '2024-02-15T06:00:00Z' })).billsCreated).toBe(1);
    await storeCalls(x.ch, [late, feb]);
    x.clock.set('2024-03-15T06:00:00Z');
    expect((await billing.runBilling({ asOf: '2024-03-15T06:00:00Z' })).billsCreated).toBe(1);

    const bills = await createBillRepository(x.db.pool).listForSubscriber(sub!, { limit: 10 });
    const [bill1, bill0] = bills;
    const first = await billing.listBillCalls(bill0!, { limit: 2 });
    expect(first.calls.map((k) => k.callId)).toEqual(['a', 'b']);
    expect(first.calls[0]).toEqual({
      callId: 'a', targetNumber: CHI, startedAt: '2024-01-20T15:00:00.000Z', endedAt: '2024-01-20T15:01:01.000Z',
      durationMs: 61_000, callClass: 'domestic', billableSeconds: 120, chargeUnits: 120 * 5000, late: false,
    });
    expect(first.nextCursor).not.toBeNull();
    const second = await billing.listBillCalls(bill0!, { limit: 2, cursor: first.nextCursor! });
    expect([second.calls.map((k) => k.callId), second.nextCursor]).toEqual([['c'], null]);
    // The late call, stored after bill 0, never shows on it; it is on bill 1, flagged.
    const onBill1 = await billing.listBillCalls(bill1!, { limit: 10 });
    expect(onBill1.calls.map((k) => [k.callId, k.late])).toEqual([['late', true], ['feb', false]]);
    expect(await billing.listBillCalls(bill0!, { limit: 10 })).toEqual({ calls: [...first.calls, ...second.calls], nextCursor: null });
    await expect(billing.listBillCalls(bill0!, { limit: 2, cursor: 'not-a-cursor' })).rejects.toMatchObject({ kind: 'invalid', field: 'cursor' });
  });
});

describe('the schedule', () => {
  it('runs the billing run on the cron expression, and not once stopped', async () => {
    x = await billingHarness({ now: '2024-02-15T06:00:00Z' });
    await addSubscribers(x.db.pool, [{ phoneNumber: NY, subscriptionDate: '2024-01-15', timeZone: 'America/New_York' }]);
    billing = service(x, '* * * * * *'); // every second
    billing.startSchedule();
    const runs = async () => (await x!.db.pool.query<{ n: number; bills: number }>(
      `SELECT count(*)::int AS n, coalesce(sum(bills_created), 0)::int AS bills FROM billing_runs WHERE status = 'succeeded'`)).rows[0]!;
    const until = Date.now() + 10_000;
    while ((await runs()).n < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    const seen = await runs();
    expect(seen.n).toBeGreaterThanOrEqual(2);
    expect(seen.bills).toBe(1);
    await billing.close();
    const after = (await runs()).n;
    await new Promise((r) => setTimeout(r, 1500));
    expect((await runs()).n).toBe(after);
  });

  it('does nothing when the schedule is off', async () => {
    x = await billingHarness({ now: '2024-02-15T06:00:00Z' });
    billing = service(x, undefined);
    billing.startSchedule();
    await new Promise((r) => setTimeout(r, 1500));
    expect((await x.db.pool.query('SELECT count(*)::int AS n FROM billing_runs')).rows).toEqual([{ n: 0 }]);
  });
});
