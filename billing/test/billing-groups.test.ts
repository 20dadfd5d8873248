/**
 * Billing groups (migration 0034): subscribers who share their subscription date and zone share
 * every period, and follow one cursor, their group's, which a run moves once all their bills are
 * in. A subscriber whose position may differ from its group's gets a cursor of its own. Against
 * real PostgreSQL and embedded ClickHouse.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { storeCalls, type TestCall } from '../../test/calls.ts';
import { bytesOf } from '../../core/postgres/index.ts';
import { BILLING_LOCK_KEY, type BillingRunStore } from '../adapters/postgres/billing-runs.ts';
import { addSubscribers, billingHarness, readBills, type Harness, type NewSubscriber } from './support/harness.ts';
import { call, lateLine, monthly } from './support/calls.ts';

const NY = '+12125550100';
const NY2 = '+12125550101';
const NY3 = '+12125550102';
const CHI = '+13125550100';
const JM = '+18765550100';
const JAN15_NY = { subscriptionDate: '2024-01-15', timeZone: 'America/New_York' };

let h: Harness | undefined;
afterEach(async () => { await h?.close(); h = undefined; });

async function setup(asOf: string, subs: NewSubscriber[], calls: TestCall[] = []): Promise<Harness> {
  h = await billingHarness({ now: asOf });
  await addSubscribers(h.db.pool, subs);
  await storeCalls(h.ch, calls);
  return h;
}

async function runAt(x: Harness, asOf: string, store?: BillingRunStore) {
  x.clock.set(asOf);
  return (store ? x.runner({ store, config: { billingChunkSize: 1 } }) : x.runBilling)({ asOf });
}

/** Each subscriber's position (by phone number): whether it follows its group, the next period, the watermark. */
async function positions(x: Harness): Promise<Record<string, { follows: boolean; next: number; watermark: string | null }>> {
  const { rows } = await x.db.pool.query(`SELECT s.phone_number, p.follows, p.next_period_index, p.last_watermark
    FROM billing_positions p JOIN subscribers s ON s.id = p.subscriber_id ORDER BY s.phone_number`);
  return Object.fromEntries(rows.map((r) => [r.phone_number, { follows: r.follows, next: r.next_period_index, watermark: r.last_watermark?.toISOString() ?? null }]));
}

describe('billing groups', () => {
  it('subscribers who share subscription date and zone follow one cursor: a run moves the group, not each one\'s', async () => {
    const x = await setup('2024-02-15T06:00:00Z', [
      { phoneNumber: NY, ...JAN15_NY }, { phoneNumber: NY2, ...JAN15_NY }, { phoneNumber: NY3, ...JAN15_NY, plan: 'saver' },
      { phoneNumber: CHI, subscriptionDate: '2024-01-15', timeZone: 'America/Chicago' },
    ], [call(NY, CHI, '2024-01-20T15:00:00Z', 60_000)]);
    const cursorsBefore = (await x.db.pool.query('SELECT * FROM billing_cursors ORDER BY subscriber_id')).rows;
    expect(cursorsBefore.map((c) => c.follows)).toEqual([true, true, true, true]);
    expect((await x.db.pool.query('SELECT count(*)::int AS n FROM billing_groups')).rows).toEqual([{ n: 2 }]);

    // Chicago's period 0 ends at 06:00Z, not due under the 1 h grace: its group is placed, not billed.
    expect((await runAt(x, '2024-02-15T06:00:00Z')).billsCreated).toBe(3);
    // Not one subscriber's cursor row changed; the groups moved (each in one row).
    expect((await x.db.pool.query('SELECT * FROM billing_cursors ORDER BY subscriber_id')).rows).toEqual(cursorsBefore);
    const groups = (await x.db.pool.query(`SELECT time_zone, next_period_index, next_period_end, last_watermark FROM billing_groups ORDER BY time_zone`)).rows;
    expect(groups).toEqual([
      { time_zone: 'America/Chicago', next_period_index: 0, next_period_end: new Date('2024-02-15T06:00:00Z'), last_watermark: null },
      { time_zone: 'America/New_York', next_period_index: 1, next_period_end: new Date('2024-03-15T04:00:00Z'), last_watermark: new Date('2024-02-15T06:00:00Z') },
    ]);
    const w = '2024-02-15T06:00:00.000Z';
    expect(await positions(x)).toEqual({
      [NY]: { follows: true, next: 1, watermark: w }, [NY2]: { follows: true, next: 1, watermark: w }, [NY3]: { follows: true, next: 1, watermark: w },
      [CHI]: { follows: true, next: 0, watermark: null },
    });
    // The next month bills all four from there, each period once (Chicago's first two).
    expect((await runAt(x, '2024-03-15T06:00:00Z')).billsCreated).toBe(5);
    expect((await readBills(x.db.pool)).map((b) => `${b.phoneNumber}/${b.periodIndex}`)).toEqual(
      [`${NY}/0`, `${NY}/1`, `${NY2}/0`, `${NY2}/1`, `${NY3}/0`, `${NY3}/1`, `${CHI}/0`, `${CHI}/1`].sort());
  });

  it('a subscriber created once its group has billed, or while a run is in progress, gets a cursor of its own from period 0, and follows its group again once billed up to it', async () => {
    const x = await setup('2024-02-15T06:00:00Z', [{ phoneNumber: NY, ...JAN15_NY }]);
    await runAt(x, '2024-02-15T06:00:00Z');
    await addSubscribers(x.db.pool, [{ phoneNumber: NY2, ...JAN15_NY }]);
    // A run in progress (it holds the billing lock): it may have read its due subscribers already.
    const lock = await x.db.pool.connect();
    try {
      await lock.query('SELECT pg_advisory_lock($1)', [BILLING_LOCK_KEY]);
      await addSubscribers(x.db.pool, [{ phoneNumber: CHI, subscriptionDate: '2024-01-15', timeZone: 'America/Chicago' }]);
      await lock.query('SELECT pg_advisory_unlock($1)', [BILLING_LOCK_KEY]);
    } finally { lock.release(); }
    // With no run in progress and nothing of its group billed, a new subscriber follows its group.
    await addSubscribers(x.db.pool, [{ phoneNumber: NY3, subscriptionDate: '2024-01-16', timeZone: 'America/New_York' }]);
    expect(await positions(x)).toEqual({
      [NY]: { follows: true, next: 1, watermark: '2024-02-15T06:00:00.000Z' },
      [NY2]: { follows: false, next: 0, watermark: null },
      [NY3]: { follows: true, next: 0, watermark: null },
      [CHI]: { follows: false, next: 0, watermark: null },
    });
    // NY2 gets its two periods, NY its second: NY2 is then where its group is, with the same
    // watermark, and follows it again. CHI's group has no follower to move it: CHI keeps its own.
    await runAt(x, '2024-03-15T06:00:00Z');
    expect((await readBills(x.db.pool)).map((b) => `${b.phoneNumber}/${b.periodIndex}`)).toEqual(
      [`${NY}/0`, `${NY}/1`, `${NY2}/0`, `${NY2}/1`, `${NY3}/0`, `${CHI}/0`, `${CHI}/1`].sort());
    const w = '2024-03-15T06:00:00.000Z';
    expect(await positions(x)).toEqual({
      [NY]: { follows: true, next: 2, watermark: w },
      [NY2]: { follows: true, next: 2, watermark: w },
      [NY3]: { follows: true, next: 1, watermark: w },
      [CHI]: { follows: false, next: 2, watermark: w },
    });
  });

  it('closing a subscriber, or changing its zone, pins its cursor where its group stood; the group moves on without it', async () => {
    const x = await setup('2024-02-15T06:00:00Z', [{ phoneNumber: NY, ...JAN15_NY }, { phoneNumber: NY2, ...JAN15_NY }, { phoneNumber: NY3, ...JAN15_NY }]);
    await runAt(x, '2024-02-15T06:00:00Z');
    await x.db.pool.query(`UPDATE subscribers SET status = 'closed' WHERE phone_number = $1`, [NY2]);
    await x.db.pool.query(`UPDATE subscribers SET time_zone = 'America/Chicago' WHERE phone_number = $1`, [NY3]);
    const w = '2024-02-15T06:00:00.000Z';
    expect(await positions(x)).toEqual({
      [NY]: { follows: true, next: 1, watermark: w }, [NY2]: { follows: false, next: 1, watermark: w }, [NY3]: { follows: false, next: 1, watermark: w },
    });
    const group = async (phone: string) => (await x.db.pool.query(`SELECT g.time_zone FROM billing_cursors c JOIN billing_groups g ON g.id = c.group_id
      JOIN subscribers s ON s.id = c.subscriber_id WHERE s.phone_number = $1`, [phone])).rows[0].time_zone;
    expect(await group(NY3)).toBe('America/Chicago');
    // March: NY and NY3 (its period 1 now ends at Chicago's midnight) are billed; NY2, closed, is not.
    expect((await runAt(x, '2024-03-15T07:00:00Z')).billsCreated).toBe(2);
    const p = await positions(x);
    expect([p[NY], p[NY2]!.next, p[NY3]!.next]).toEqual([{ follows: true, next: 2, watermark: '2024-03-15T07:00:00.000Z' }, 1, 2]);
  });

  it('a following subscriber the run skips (unknown plan) is pinned before its group moves, and billed from there once its plan is known', async () => {
    const x = await setup('2024-02-15T06:00:00Z', [{ phoneNumber: NY, ...JAN15_NY }, { phoneNumber: NY2, ...JAN15_NY, plan: 'gold' }]);
    const s = await runAt(x, '2024-02-15T06:00:00Z');
    expect([s.billsCreated, s.skipped.length]).toEqual([1, 1]);
    expect(await positions(x)).toEqual({
      [NY]: { follows: true, next: 1, watermark: '2024-02-15T06:00:00.000Z' },
      [NY2]: { follows: false, next: 0, watermark: null },
    });
    await x.db.pool.query(`UPDATE subscribers SET plan = 'standard' WHERE phone_number = $1`, [NY2]);
    expect((await runAt(x, '2024-02-15T07:00:00Z')).billsCreated).toBe(1);
    expect((await readBills(x.db.pool)).map((b) => `${b.phoneNumber}/${b.periodIndex}`)).toEqual([`${NY}/0`, `${NY2}/0`]);
  });

  it('a run that fails part-way: the next run gives the subscribers it billed cursors of their own, with its watermark, so late calls of their periods are billed', async () => {
    // A call of NY's period 0 ingested after the failed run's watermark, before the rerun's.
    const lateCall = call(NY, JM, '2024-02-10T15:00:00Z', 60_000, { ingested: '2024-02-15T06:10:00Z' });
    const x = await setup('2024-02-15T06:00:00Z', [{ phoneNumber: NY, ...JAN15_NY }, { phoneNumber: NY2, ...JAN15_NY }], [lateCall]);
    const ny2 = (await x.db.pool.query('SELECT id FROM subscribers WHERE phone_number = $1', [NY2])).rows[0].id as string;
    // Chunks of one (NY's bill, then NY2's); the write holding NY2's bill fails.
    const failing: BillingRunStore = {
      ...x.store,
      writeBills: async (bills) => {
        const rendered = await bills;
        if (bytesOf(rendered.tuples).includes(Buffer.from(ny2.replaceAll('-', ''), 'hex'))) throw new Error('connection lost');
        return x.store.writeBills(rendered);
      },
    };
    await expect(runAt(x, '2024-02-15T06:00:00Z', failing)).rejects.toThrow('connection lost');
    expect((await readBills(x.db.pool)).map((b) => b.phoneNumber)).toEqual([NY]);
    expect((await x.db.pool.query('SELECT settled FROM billing_runs')).rows).toEqual([{ settled: false }]);

    // An hour later: NY's bill 0 stays as it was; NY gets a cursor of its own past it, with the failed
    // run's watermark; NY2 is billed and follows the group, moved with the rerun's watermark.
    const rerun = await runAt(x, '2024-02-15T07:00:00Z');
    expect([rerun.periodsDue, rerun.billsCreated]).toEqual([1, 1]);
    expect(await positions(x)).toEqual({
      [NY]: { follows: false, next: 1, watermark: '2024-02-15T06:00:00.000Z' },
      [NY2]: { follows: true, next: 1, watermark: '2024-02-15T07:00:00.000Z' },
    });
    expect((await x.db.pool.query('SELECT bool_and(settled) AS s FROM billing_runs')).rows).toEqual([{ s: true }]);
    // March: the late call is on NY's bill 1, once.
    await runAt(x, '2024-03-15T06:00:00Z');
    const bills = await readBills(x.db.pool, NY);
    expect(bills.map((b) => b.lines)).toEqual([
      [monthly()],
      [monthly(), lateLine('2024-01-15', '2024-02-15', '2024-01-15T05:00:00Z', '2024-02-15T05:00:00Z', 1, 60, 45)],
    ]);
    expect((await readBills(x.db.pool, NY2)).map((b) => b.lines)).toEqual([[monthly()], [monthly()]]);
    // Billed to the same period as its group, with the same watermark, NY follows it again.
    expect((await positions(x))[NY]).toEqual({ follows: true, next: 2, watermark: '2024-03-15T06:00:00.000Z' });
  });

  it('a bill inserted outside a run moves a following subscriber\'s position past it (a cursor of its own)', async () => {
    const x = await setup('2024-02-15T06:00:00Z', [{ phoneNumber: NY, ...JAN15_NY }, { phoneNumber: NY2, ...JAN15_NY }]);
    const id = (await x.db.pool.query('SELECT id FROM subscribers WHERE phone_number = $1', [NY])).rows[0].id as string;
    await x.db.pool.query(`INSERT INTO bills (subscriber_id, period_index, period_start, period_end, period_start_local, period_end_local,
        issued_at, due_at, currency, total_cents, watermark, lines, next_period_end)
      VALUES ($1, 0, '2024-01-15T05:00:00Z', '2024-02-15T05:00:00Z', '2024-01-15', '2024-02-15', '2024-02-15T06:00:00Z', '2024-03-07T06:00:00Z',
        'USD', 2000, '2024-02-15T05:30:00Z', $2, '2024-03-15T04:00:00Z')`, [id, JSON.stringify([monthly()])]);
    expect(await positions(x)).toEqual({
      [NY]: { follows: false, next: 1, watermark: '2024-02-15T05:30:00.000Z' },
      [NY2]: { follows: true, next: 0, watermark: null },
    });
    // The run bills NY2 only.
    expect((await runAt(x, '2024-02-15T06:00:00Z')).billsCreated).toBe(1);
    expect((await readBills(x.db.pool)).map((b) => `${b.phoneNumber}/${b.periodIndex}`)).toEqual([`${NY}/0`, `${NY2}/0`]);
  });
});

