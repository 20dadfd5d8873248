/**
 * The billing run against real PostgreSQL and embedded ClickHouse, with
 * amounts and periods worked out by hand. Standard plan: 5/10/45/199 ¢ per
 * minute (domestic, cross-border, NANP international, premium), 60 s
 * increments, 2000 ¢ a month. Saver: 6 s increments, 1500 ¢ a month,
 * domestic 2.5 ¢ → 2.75 ¢ and JM 32.125 ¢ → 29.875 ¢ for calls starting at
 * or after 2025-07-01T04:00Z, premium 199 ¢ in 60 s increments.
 * Amounts are in charge units (billable s × milli-cents per minute; 60,000 a
 * cent), summed per line and rounded once, half up.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { storeCalls, type TestCall } from '../../test/calls.ts';
import { bytesOf, copyIn, createPool } from '../../core/postgres/index.ts';
import { isDomainError } from '../../core/errors.ts';
import { createBillingRunStore, type BillingRunStore, type RenderedBills } from '../adapters/postgres/billing-runs.ts';
import { addSubscribers, billingHarness, readBills, tariff, TEST_CONFIG, type Harness, type NewSubscriber, type StoredBill } from './support/harness.ts';
import { createBillingRunner } from '../run/run-billing.ts';
import { silentLogger } from '../../core/log.ts';
import type { Tariff } from '../domain/index.ts';
import { call, iso, lateLine, line, monthly, ms, resend } from './support/calls.ts';

const NY = '+12125550100';
const CHI = '+13125550100';
const TOR = '+14165550100';
const JM = '+18765550100';
const TOLL_FREE = '+18005550100';
const PREMIUM = '+19005550100';
const NY_SUB: NewSubscriber = { phoneNumber: NY, subscriptionDate: '2024-01-15', timeZone: 'America/New_York' };
/** NY_SUB's periods: 2024-01-15 and 02-15 are EST (05:00Z), 03-15 and 04-15 EDT (04:00Z). */
const NY_P = [
  { start: '2024-01-15T05:00:00Z', end: '2024-02-15T05:00:00Z', startLocal: '2024-01-15', endLocal: '2024-02-15' },
  { start: '2024-02-15T05:00:00Z', end: '2024-03-15T04:00:00Z', startLocal: '2024-02-15', endLocal: '2024-03-15' },
  { start: '2024-03-15T04:00:00Z', end: '2024-04-15T04:00:00Z', startLocal: '2024-03-15', endLocal: '2024-04-15' },
] as const;

let h: Harness | undefined;
afterEach(async () => { await h?.close(); h = undefined; });

async function setup(asOf: string, subs: NewSubscriber[], calls: TestCall[] = [], config?: Parameters<typeof billingHarness>[0]['config']): Promise<Harness> {
  h = await billingHarness({ now: asOf, ...(config ? { config } : {}) });
  await addSubscribers(h.db.pool, subs);
  await storeCalls(h.ch, calls);
  return h;
}

/**
 * Whether rendered bills (binary COPY tuples) hold a bill of the subscriber's period: its id's 16
 * bytes, then the period index field (a 4-byte length, 4, and the index), as the tuple lays them out.
 */
function holdsBill(bills: RenderedBills, subscriberId: string, periodIndex: number): boolean {
  const index = Buffer.alloc(8);
  index.writeInt32BE(4, 0);
  index.writeInt32BE(periodIndex, 4);
  return bytesOf(bills.tuples).includes(Buffer.concat([Buffer.from(subscriberId.replaceAll('-', ''), 'hex'), index]));
}

/** Runs as of an instant with the clock standing there too, so the watermark is asOf itself. */
async function runAt(x: Harness, asOf: string) {
  x.clock.set(asOf);
  return x.runBilling({ asOf });
}

interface BillSpec {
  phone: string;
  index: number;
  period: { start: string; end: string; startLocal: string; endLocal: string };
  lines: StoredBill['lines'];
  total: number;
  asOf: string;
}

const expected = (b: BillSpec): StoredBill => ({
  phoneNumber: b.phone, periodIndex: b.index,
  periodStart: iso(ms(b.period.start)), periodEnd: iso(ms(b.period.end)),
  periodStartLocal: b.period.startLocal, periodEndLocal: b.period.endLocal,
  issuedAt: iso(ms(b.asOf)), dueAt: iso(ms(b.asOf) + 21 * 86_400_000), currency: 'USD',
  totalCents: b.total, status: 'open', watermark: iso(ms(b.asOf)), lines: b.lines,
});

interface Case { name: string; asOf: string; subs: NewSubscriber[]; calls: TestCall[]; bills: Omit<BillSpec, 'asOf'>[] }

const CASES: Case[] = [
  {
    name: 'every class of the standard plan: 61 s is 2 min, 0 s is 0 min, free lines still count their calls',
    asOf: '2024-02-15T06:00:00Z',
    subs: [NY_SUB],
    calls: [
      call(NY, CHI, '2024-01-20T15:00:00Z', 61_000), // 2 min, 10 ¢
      call(NY, CHI, '2024-01-21T15:00:00Z', 0), // 0 min
      call(NY, TOR, '2024-01-22T15:00:00Z', 30_000), // 1 min, 10 ¢
      call(NY, JM, '2024-01-23T15:00:00Z', 125_000), // 3 min, 135 ¢
      call(NY, PREMIUM, '2024-01-24T15:00:00Z', 60_000), // 1 min, 199 ¢
      call(NY, TOLL_FREE, '2024-01-25T15:00:00Z', 600_000), // 10 min, free
      call(NY, '911', '2024-01-26T15:00:00Z', 90_000), // 2 min, free
      call(NY, CHI, '2024-01-15T04:59:59.999Z', 60_000), // before the subscription: nobody's
    ],
    bills: [{
      phone: NY, index: 0, period: NY_P[0], total: 2354,
      lines: [monthly(), line('domestic', 2, 120, 10), line('cross_border', 1, 60, 10), line('nanp_international', 1, 180, 135),
        line('premium', 1, 60, 199), line('toll_free', 1, 600, 0), line('service_code', 1, 120, 0)],
    }],
  },
  {
    name: 'a call crossing the period end is billed once, in the period it started',
    asOf: '2024-03-15T05:00:00Z',
    subs: [NY_SUB],
    calls: [call(NY, CHI, '2024-02-15T04:59:00Z', 660_000)], // 23:59 local on Feb 14, 11 min
    bills: [
      { phone: NY, index: 0, period: NY_P[0], total: 2055, lines: [monthly(), line('domestic', 1, 660, 55)] },
      { phone: NY, index: 1, period: NY_P[1], total: 2000, lines: [monthly()] },
    ],
  },
  {
    name: 'incoming calls are free: a call between two subscribers is billed to its source only',
    asOf: '2024-02-15T07:00:00Z',
    subs: [NY_SUB, { phoneNumber: CHI, subscriptionDate: '2024-01-15', timeZone: 'America/Chicago' }],
    calls: [
      call(NY, CHI, '2024-02-01T15:00:00Z', 120_000),
      call(CHI, NY, '2024-02-02T15:00:00Z', 30_000),
      call(TOR, NY, '2024-02-03T15:00:00Z', 300_000), // from a non-subscriber: billed to nobody here
    ],
    bills: [
      { phone: NY, index: 0, period: NY_P[0], total: 2010, lines: [monthly(), line('domestic', 1, 120, 10)] },
      {
        phone: CHI, index: 0, total: 2005, lines: [monthly(), line('domestic', 1, 60, 5)],
        period: { start: '2024-01-15T06:00:00Z', end: '2024-02-15T06:00:00Z', startLocal: '2024-01-15', endLocal: '2024-02-15' },
      },
    ],
  },
  {
    name: 'a call stored twice before its bill counts once',
    asOf: '2024-02-15T06:00:00Z',
    subs: [NY_SUB],
    calls: ((c) => [c, resend(c, '2024-01-21T00:00:00Z'), call(NY, CHI, '2024-01-22T15:00:00Z', 60_000)])(call(NY, CHI, '2024-01-20T15:00:00Z', 61_000, { id: 'dup' })),
    bills: [{ phone: NY, index: 0, period: NY_P[0], total: 2015, lines: [monthly(), line('domestic', 2, 180, 15)] }],
  },
  {
    name: 'saver: 6 s increments, the 2025-07-01 rate change applies by each call\'s start',
    asOf: '2025-07-20T08:00:00Z',
    subs: [{ phoneNumber: '+14155550100', subscriptionDate: '2025-06-20', timeZone: 'America/Los_Angeles', plan: 'saver' }],
    calls: [
      call('+14155550100', NY, '2025-06-25T12:00:00Z', 61_000), // 66 s × 2500 = 165,000
      call('+14155550100', NY, '2025-07-01T03:59:59.999Z', 1), // 6 s × 2500 = 15,000 (ends after the change)
      call('+14155550100', NY, '2025-07-01T04:00:00.000Z', 1), // 6 s × 2750 = 16,500
      call('+14155550100', NY, '2025-07-05T12:00:00Z', 61_000), // 66 s × 2750 = 181,500 → 378,000 = 6.3 ¢
      call('+14155550100', TOR, '2025-07-05T13:00:00Z', 6_000), // 6 s × 7250 = 43,500 = 0.725 ¢ → 1 ¢
      call('+14155550100', JM, '2025-06-26T12:00:00Z', 7_000), // 12 s × 32125 = 385,500
      call('+14155550100', JM, '2025-07-06T12:00:00Z', 7_000), // 12 s × 29875 = 358,500 → 744,000 = 12.4 ¢
      call('+14155550100', PREMIUM, '2025-07-07T12:00:00Z', 7_000), // premium stays 60 s: 199 ¢
      call('+14155550100', TOLL_FREE, '2025-07-08T12:00:00Z', 0),
    ],
    bills: [{
      phone: '+14155550100', index: 0, total: 1718,
      period: { start: '2025-06-20T07:00:00Z', end: '2025-07-20T07:00:00Z', startLocal: '2025-06-20', endLocal: '2025-07-20' },
      lines: [monthly(1500), line('domestic', 4, 144, 6), line('cross_border', 1, 6, 1), line('nanp_international', 2, 24, 12),
        line('premium', 1, 60, 199), line('toll_free', 1, 0, 0)],
    }],
  },
  {
    name: 'a line is rounded once, half up: two 0.25 ¢ calls make 1 ¢, not 0 (Phoenix, no DST)',
    asOf: '2025-02-10T08:00:00Z',
    subs: [{ phoneNumber: '+16025550100', subscriptionDate: '2025-01-10', timeZone: 'America/Phoenix', plan: 'saver' }],
    calls: [call('+16025550100', NY, '2025-01-11T12:00:00Z', 1_000), call('+16025550100', NY, '2025-01-12T12:00:00Z', 1_000)],
    bills: [{
      phone: '+16025550100', index: 0, total: 1501, lines: [monthly(1500), line('domestic', 2, 12, 1)],
      period: { start: '2025-01-10T07:00:00Z', end: '2025-02-10T07:00:00Z', startLocal: '2025-01-10', endLocal: '2025-02-10' },
    }],
  },
  {
    name: 'Jan 31 clamps to Feb 29 and back to Mar 31 in St_Johns (−3:30, then −2:30 from Mar 10); a Feb 29 subscriber in Honolulu',
    asOf: '2024-05-01T00:00:00Z',
    subs: [
      { phoneNumber: '+17095550100', subscriptionDate: '2024-01-31', timeZone: 'America/St_Johns' },
      { phoneNumber: '+18085550100', subscriptionDate: '2024-02-29', timeZone: 'Pacific/Honolulu' },
    ],
    calls: [
      call('+17095550100', TOR, '2024-02-29T03:29:59.999Z', 1_000), // 23:59:59.999 Feb 28 local: period 0
      call('+17095550100', TOR, '2024-02-29T03:30:00.000Z', 1_000), // 00:00 Feb 29 local: period 1
      call('+17095550100', TOR, '2024-03-31T02:29:59.999Z', 61_000), // period 1
      call('+17095550100', NY, '2024-03-31T02:30:00.000Z', 1_000), // period 2, cross-border
      call('+18085550100', NY, '2024-03-29T09:59:59.999Z', 1_000), // period 0
      call('+18085550100', NY, '2024-03-29T10:00:00.000Z', 1_000), // period 1
    ],
    bills: [
      {
        phone: '+17095550100', index: 0, total: 2005, lines: [monthly(), line('domestic', 1, 60, 5)],
        period: { start: '2024-01-31T03:30:00Z', end: '2024-02-29T03:30:00Z', startLocal: '2024-01-31', endLocal: '2024-02-29' },
      },
      {
        phone: '+17095550100', index: 1, total: 2015, lines: [monthly(), line('domestic', 2, 180, 15)],
        period: { start: '2024-02-29T03:30:00Z', end: '2024-03-31T02:30:00Z', startLocal: '2024-02-29', endLocal: '2024-03-31' },
      },
      {
        phone: '+17095550100', index: 2, total: 2010, lines: [monthly(), line('cross_border', 1, 60, 10)],
        period: { start: '2024-03-31T02:30:00Z', end: '2024-04-30T02:30:00Z', startLocal: '2024-03-31', endLocal: '2024-04-30' },
      },
      {
        phone: '+18085550100', index: 0, total: 2005, lines: [monthly(), line('domestic', 1, 60, 5)],
        period: { start: '2024-02-29T10:00:00Z', end: '2024-03-29T10:00:00Z', startLocal: '2024-02-29', endLocal: '2024-03-29' },
      },
      {
        phone: '+18085550100', index: 1, total: 2005, lines: [monthly(), line('domestic', 1, 60, 5)],
        period: { start: '2024-03-29T10:00:00Z', end: '2024-04-29T10:00:00Z', startLocal: '2024-03-29', endLocal: '2024-04-29' },
      },
    ],
  },
  {
    name: 'Jan 31 clamps to Feb 28 in a common year (Honolulu, −10:00 all year)',
    asOf: '2023-04-01T00:00:00Z',
    subs: [{ phoneNumber: '+18085550100', subscriptionDate: '2023-01-31', timeZone: 'Pacific/Honolulu' }],
    calls: [
      call('+18085550100', NY, '2023-02-28T09:59:59.999Z', 1_000),
      call('+18085550100', NY, '2023-02-28T10:00:00.000Z', 120_001),
    ],
    bills: [
      {
        phone: '+18085550100', index: 0, total: 2005, lines: [monthly(), line('domestic', 1, 60, 5)],
        period: { start: '2023-01-31T10:00:00Z', end: '2023-02-28T10:00:00Z', startLocal: '2023-01-31', endLocal: '2023-02-28' },
      },
      {
        phone: '+18085550100', index: 1, total: 2015, lines: [monthly(), line('domestic', 1, 180, 15)],
        period: { start: '2023-02-28T10:00:00Z', end: '2023-03-31T10:00:00Z', startLocal: '2023-02-28', endLocal: '2023-03-31' },
      },
    ],
  },
];

describe('runBilling: bills worked out by hand', () => {
  it.each(CASES)('$name', async (c) => {
    const x = await setup(c.asOf, c.subs, c.calls);
    const summary = await runAt(x, c.asOf);
    expect(summary.billsCreated).toBe(c.bills.length);
    expect(summary.skipped).toEqual([]);
    const want = c.bills.map((b) => expected({ ...b, asOf: c.asOf })).sort((a, b) => a.phoneNumber.localeCompare(b.phoneNumber) || a.periodIndex - b.periodIndex);
    expect(await readBills(x.db.pool)).toEqual(want);
  });
});

/** Every row a run writes or reads, ids and creation times included, to show a rerun touched nothing. */
async function snapshot(x: Harness) {
  const q = async (sql: string) => (await x.db.pool.query(sql)).rows;
  return {
    bills: await q(`SELECT * FROM bills ORDER BY id`),
    cursors: await q(`SELECT * FROM billing_cursors ORDER BY subscriber_id`),
    groups: await q(`SELECT * FROM billing_groups ORDER BY id`),
    subscribers: await q(`SELECT * FROM subscribers ORDER BY id`),
  };
}

describe('runBilling: classes by NPA, as issue 3 pins the tariff', () => {
  // libphonenumber types BS 242-300 and TT 868-800 as toll-free and BB 246-976 and KY 345-976 as
  // premium; issue 3 makes toll-free the 8xx NPAs and premium NPA 900, so these are NANP
  // international (45 ¢/min), at ingest (core/numbers) and in the reference rater alike.
  it('calls to foreign exchanges libphonenumber types as toll-free or premium are NANP international', async () => {
    const targets = ['+12423000100', '+18688000100', '+12469760100', '+13459760100'];
    const x = await setup('2024-02-15T06:00:00Z', [NY_SUB], targets.map((t, i) => call(NY, t, `2024-01-2${i}T15:00:00Z`, 60_000)));
    await runAt(x, '2024-02-15T06:00:00Z');
    expect((await readBills(x.db.pool))[0]!.lines).toEqual([monthly(), line('nanp_international', 4, 240, 180)]);
  });
});

describe('runBilling: reruns, concurrency, catch-up, grace', () => {
  it('a rerun with the same asOf creates no bill and changes no row', async () => {
    const x = await setup('2024-03-15T05:00:00Z', [NY_SUB, { phoneNumber: CHI, subscriptionDate: '2024-02-01', timeZone: 'America/Chicago' }],
      [call(NY, CHI, '2024-01-20T15:00:00Z', 61_000), call(CHI, NY, '2024-02-20T15:00:00Z', 61_000)]);
    const first = await runAt(x, '2024-03-15T05:00:00Z');
    expect([first.periodsDue, first.billsCreated]).toEqual([3, 3]);
    const before = await snapshot(x);
    const again = await runAt(x, '2024-03-15T05:00:00Z');
    expect([again.subscribersConsidered, again.periodsDue, again.billsCreated]).toEqual([0, 0, 0]);
    expect(await snapshot(x)).toEqual(before);
  });

  it('periods already billed but unknown to the cursors are skipped by the unique keys, not billed again', async () => {
    // The direct COPY of a chunk meets a bill that exists; the chunk goes through ON CONFLICT DO NOTHING.
    const x = await setup('2024-03-15T05:00:00Z', [NY_SUB, { phoneNumber: CHI, subscriptionDate: '2024-02-01', timeZone: 'America/Chicago' }],
      [call(NY, CHI, '2024-01-20T15:00:00Z', 61_000), call(CHI, NY, '2024-02-20T15:00:00Z', 61_000)]);
    expect((await runAt(x, '2024-03-15T05:00:00Z')).billsCreated).toBe(3);
    const bills = (await x.db.pool.query('SELECT id, subscriber_id, period_index, total_cents, lines FROM bills ORDER BY subscriber_id, period_index')).rows;
    // Rewound to "never seen by a run", as a cursor opened with its subscriber is: the cursors of
    // their groups, which both follow.
    expect((await x.db.pool.query('SELECT bool_and(follows) AS f FROM billing_cursors')).rows).toEqual([{ f: true }]);
    await x.db.pool.query(`UPDATE billing_groups SET next_period_index = 0, next_period_end = '-infinity', last_watermark = NULL`);
    // Half an hour later: the same periods are due, under a later watermark.
    const again = await runAt(x, '2024-03-15T05:30:00Z');
    expect([again.subscribersConsidered, again.periodsDue, again.billsCreated]).toEqual([2, 3, 0]);
    expect((await x.db.pool.query('SELECT id, subscriber_id, period_index, total_cents, lines FROM bills ORDER BY subscriber_id, period_index')).rows).toEqual(bills);
    // Each subscriber is past its bills again, with the watermark of the bill as stored (the first
    // run's): the calls ingested since are late usage on the next bill, not lost. Its group's cursor
    // would carry the second run's watermark, so each has a cursor of its own now.
    const cursors = await x.db.pool.query(`SELECT s.phone_number, c.next_period_index, c.last_watermark, c.follows
      FROM billing_positions c JOIN subscribers s ON s.id = c.subscriber_id ORDER BY s.phone_number`);
    expect(cursors.rows).toEqual([
      { phone_number: NY, next_period_index: 2, last_watermark: new Date('2024-03-15T05:00:00Z'), follows: false },
      { phone_number: CHI, next_period_index: 1, last_watermark: new Date('2024-03-15T05:00:00Z'), follows: false },
    ].sort((a, b) => (a.phone_number < b.phone_number ? -1 : 1)));
  });

  it('every subscriber has a cursor from its creation (one statement for a bulk COPY), and a cursor cannot be deleted', async () => {
    const x = await setup('2024-03-15T05:00:00Z', [NY_SUB], []);
    const client = await x.db.pool.connect();
    try {
      await copyIn(client, 'COPY subscribers (phone_number, subscription_date, time_zone) FROM STDIN', [0, 1, 2], (i) => `+1312555010${i}\t2024-03-0${i + 1}\tAmerica/Chicago\n`);
    } finally { client.release(); }
    const { rows } = await x.db.pool.query(`SELECT s.phone_number, c.next_period_index, c.next_period_end = '-infinity' AS unplaced
      FROM subscribers s LEFT JOIN billing_cursors c ON c.subscriber_id = s.id ORDER BY s.phone_number`);
    expect(rows).toEqual([
      { phone_number: NY, next_period_index: 0, unplaced: true },
      ...[0, 1, 2].map((i) => ({ phone_number: `+1312555010${i}`, next_period_index: 0, unplaced: true })),
    ]);
    // The run places the cursors of subscribers with nothing due yet at the end of their first period.
    await runAt(x, '2024-03-15T05:00:00Z');
    const placed = await x.db.pool.query(`SELECT count(*)::int AS n FROM billing_positions WHERE next_period_end = '-infinity'`);
    expect(placed.rows).toEqual([{ n: 0 }]);
    await expect(x.db.pool.query('DELETE FROM billing_cursors')).rejects.toMatchObject({ code: '23001' });
    await expect(x.db.pool.query('TRUNCATE billing_cursors')).rejects.toMatchObject({ code: '23001' });
  });

  it('two runners at once (separate pools) create each bill exactly once', async () => {
    const subs = Array.from({ length: 40 }, (_, i): NewSubscriber => ({
      phoneNumber: `+1212555${String(1000 + i)}`, subscriptionDate: `2024-01-${String(1 + (i % 28)).padStart(2, '0')}`, timeZone: 'America/New_York',
    }));
    const x = await setup('2024-04-01T00:00:00Z', subs, subs.map((s, i) => call(s.phoneNumber, CHI, '2024-02-10T15:00:00Z', 1_000 + i * 60_000)));
    const otherPool = createPool(x.db.url, { max: 3 });
    try {
      const runners = [x.runner({ config: { billingChunkSize: 7 } }), x.runner({ store: createBillingRunStore(otherPool), config: { billingChunkSize: 7 } })];
      const results = await Promise.allSettled(runners.map((r) => r({ asOf: '2024-04-01T00:00:00Z' })));
      let created = 0;
      for (const r of results) {
        if (r.status === 'fulfilled') created += r.value.billsCreated;
        else expect(isDomainError(r.reason) && r.reason.code).toBe('BILLING_RUN_IN_PROGRESS');
      }
      // Subscribers of Jan 1-28 have periods ending Feb 1-28 and Mar 1-28, all before Apr 1 − 1 h.
      expect(created).toBe(80);
      const { rows } = await x.db.pool.query(`SELECT subscriber_id, period_index, count(*)::int AS n FROM bills GROUP BY 1, 2 HAVING count(*) > 1`);
      expect(rows).toEqual([]);
      const bills = await readBills(x.db.pool);
      expect(bills.length).toBe(80);
      expect(bills.map((b) => `${b.phoneNumber}/${b.periodIndex}`)).toEqual(subs.flatMap((s) => [`${s.phoneNumber}/0`, `${s.phoneNumber}/1`]));
    } finally {
      await otherPool.end();
    }
  });

  it('a runner that finds the lock held past its wait answers BILLING_RUN_IN_PROGRESS', async () => {
    const x = await setup('2024-02-15T06:00:00Z', [NY_SUB]);
    const otherPool = createPool(x.db.url, { max: 2 });
    try {
      const other = createBillingRunStore(otherPool);
      let release!: () => void;
      const held = other.withRunLock(1000, () => new Promise<void>((r) => { release = r; }));
      await new Promise((r) => setTimeout(r, 100));
      const blocked: BillingRunStore = { ...x.store, withRunLock: (_wait, fn) => x.store.withRunLock(200, fn) };
      const err = await x.runner({ store: blocked })({ asOf: '2024-02-15T06:00:00Z' }).catch((e: unknown) => e);
      expect(isDomainError(err) && [err.kind, err.code]).toEqual(['conflict', 'BILLING_RUN_IN_PROGRESS']);
      release();
      await held;
      expect((await runAt(x, '2024-02-15T06:00:00Z')).billsCreated).toBe(1);
    } finally {
      await otherPool.end();
    }
  });

  it('catch-up: a subscriber never billed for 3 periods gets 3 bills in one run', async () => {
    const calls = [call(NY, CHI, '2024-02-01T15:00:00Z', 60_000), call(NY, CHI, '2024-03-01T15:00:00Z', 120_000), call(NY, CHI, '2024-04-01T15:00:00Z', 180_000)];
    const x = await setup('2024-04-15T05:00:00Z', [NY_SUB], calls);
    const s = await runAt(x, '2024-04-15T05:00:00Z');
    expect([s.subscribersConsidered, s.periodsDue, s.billsCreated]).toEqual([1, 3, 3]);
    const asOf = '2024-04-15T05:00:00Z';
    expect(await readBills(x.db.pool)).toEqual([
      expected({ phone: NY, index: 0, period: NY_P[0], asOf, total: 2005, lines: [monthly(), line('domestic', 1, 60, 5)] }),
      expected({ phone: NY, index: 1, period: NY_P[1], asOf, total: 2010, lines: [monthly(), line('domestic', 1, 120, 10)] }),
      expected({ phone: NY, index: 2, period: NY_P[2], asOf, total: 2015, lines: [monthly(), line('domestic', 1, 180, 15)] }),
    ]);
    // The engine gives each bill its id: distinct UUIDs of version 7 (time-ordered, so the primary key grows at its edge).
    const ids = (await x.db.pool.query<{ id: string }>('SELECT id::text FROM bills')).rows.map((r) => r.id);
    expect(new Set(ids).size).toBe(3);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('grace: a period ended 30 min before asOf waits for a later run (1 h grace)', async () => {
    const x = await setup('2024-02-15T05:30:00Z', [NY_SUB], [call(NY, CHI, '2024-02-15T04:59:00Z', 60_000)]);
    const early = await runAt(x, '2024-02-15T05:30:00Z');
    expect([early.cutoff, early.periodsDue, early.billsCreated]).toEqual(['2024-02-15T04:30:00.000Z', 0, 0]);
    expect((await runAt(x, '2024-02-15T05:59:59.999Z')).billsCreated).toBe(0);
    expect(await readBills(x.db.pool)).toEqual([]);
    const onTime = await runAt(x, '2024-02-15T06:00:00Z');
    expect([onTime.cutoff, onTime.periodsDue, onTime.billsCreated]).toEqual(['2024-02-15T05:00:00.000Z', 1, 1]);
    expect(await readBills(x.db.pool)).toEqual([
      expected({ phone: NY, index: 0, period: NY_P[0], asOf: '2024-02-15T06:00:00Z', total: 2005, lines: [monthly(), line('domestic', 1, 60, 5)] }),
    ]);
  });
});

describe('runBilling: late and resent calls', () => {
  it('a call of period 0 ingested after bill 0\'s watermark is on bill 1 as late usage, once, and never on bill 2', async () => {
    const late = call(NY, JM, '2024-02-10T15:00:00Z', 61_000, { ingested: '2024-02-15T06:00:00.001Z' }); // 1 ms after W0: 2 min × 45 ¢
    const onTime = call(NY, CHI, '2024-02-10T16:00:00Z', 60_000, { ingested: '2024-02-15T06:00:00.000Z' }); // exactly at W0: on bill 0
    const x = await setup('2024-02-15T06:00:00Z', [NY_SUB], [late, onTime, call(NY, CHI, '2024-02-20T15:00:00Z', 60_000)]);
    await runAt(x, '2024-02-15T06:00:00Z');
    await runAt(x, '2024-03-15T05:00:00Z');
    await runAt(x, '2024-04-15T05:00:00Z');
    const lateUsage = lateLine('2024-01-15', '2024-02-15', NY_P[0].start, NY_P[0].end, 1, 120, 90);
    expect(await readBills(x.db.pool)).toEqual([
      expected({ phone: NY, index: 0, period: NY_P[0], asOf: '2024-02-15T06:00:00Z', total: 2005, lines: [monthly(), line('domestic', 1, 60, 5)] }),
      expected({ phone: NY, index: 1, period: NY_P[1], asOf: '2024-03-15T05:00:00Z', total: 2095, lines: [monthly(), line('domestic', 1, 60, 5), lateUsage] }),
      expected({ phone: NY, index: 2, period: NY_P[2], asOf: '2024-04-15T05:00:00Z', total: 2000, lines: [monthly()] }),
    ]);
  });

  it('late calls of two earlier periods, arriving in one window, make two late lines, oldest first, each rounded once', async () => {
    // Bills 0 and 1 are issued in one catch-up run at W; calls of both periods arrive after it.
    const calls = [
      call(NY, CHI, '2024-02-01T15:00:00Z', 1_000, { ingested: '2024-03-20T00:00:00Z' }),
      call(NY, CHI, '2024-02-01T16:00:00Z', 1_000, { ingested: '2024-03-20T00:00:00Z' }),
      call(NY, TOR, '2024-03-01T15:00:00Z', 1_000, { ingested: '2024-03-21T00:00:00Z' }),
      call(NY, JM, '2024-03-01T16:00:00Z', 60_001, { ingested: '2024-03-21T00:00:00Z' }),
    ];
    const x = await setup('2024-03-15T05:00:00Z', [NY_SUB], calls);
    await runAt(x, '2024-03-15T05:00:00Z');
    await runAt(x, '2024-04-15T05:00:00Z');
    const bills = await readBills(x.db.pool);
    expect(bills.map((b) => b.lines)).toEqual([
      [monthly()],
      [monthly()],
      [monthly(),
        lateLine('2024-01-15', '2024-02-15', NY_P[0].start, NY_P[0].end, 2, 120, 10),
        lateLine('2024-02-15', '2024-03-15', NY_P[1].start, NY_P[1].end, 2, 180, 100)],
    ]);
    expect(bills[2]!.totalCents).toBe(2110);
  });

  it('a resend of an already billed call is never billed again, as usage or as late usage', async () => {
    const c = call(NY, JM, '2024-02-10T15:00:00Z', 61_000, { id: 'billed-once' });
    const x = await setup('2024-02-15T06:00:00Z', [NY_SUB], [c]);
    await runAt(x, '2024-02-15T06:00:00Z');
    await storeCalls(x.ch, [resend(c, '2024-02-20T00:00:00Z')]); // after W0, before W1
    await runAt(x, '2024-03-15T05:00:00Z');
    await storeCalls(x.ch, [resend(c, '2024-03-20T00:00:00Z'), resend(c, '2024-03-21T00:00:00Z')]); // after W1
    await runAt(x, '2024-04-15T05:00:00Z');
    const bills = await readBills(x.db.pool);
    expect(bills.map((b) => [b.periodIndex, b.totalCents, b.lines])).toEqual([
      [0, 2090, [monthly(), line('nanp_international', 1, 120, 90)]],
      [1, 2000, [monthly()]],
      [2, 2000, [monthly()]],
    ]);
  });

  it('a call that arrives late and is resent afterwards is billed once, on the bill after its first arrival', async () => {
    const c = call(NY, CHI, '2024-02-10T15:00:00Z', 60_000, { id: 'late-then-resent', ingested: '2024-02-20T00:00:00Z' });
    const x = await setup('2024-02-15T06:00:00Z', [NY_SUB], [c]);
    await runAt(x, '2024-02-15T06:00:00Z');
    await runAt(x, '2024-03-15T05:00:00Z');
    await storeCalls(x.ch, [resend(c, '2024-03-20T00:00:00Z')]);
    await runAt(x, '2024-04-15T05:00:00Z');
    const bills = await readBills(x.db.pool);
    expect(bills.map((b) => [b.periodIndex, b.totalCents, b.lines])).toEqual([
      [0, 2000, [monthly()]],
      [1, 2005, [monthly(), lateLine('2024-01-15', '2024-02-15', NY_P[0].start, NY_P[0].end, 1, 60, 5)]],
      [2, 2000, [monthly()]],
    ]);
  });
});

describe('runBilling: skipped subscribers, ledger, a failed run resumed', () => {
  it('a subscriber with an unknown plan is reported in skipped; the others are billed', async () => {
    const x = await setup('2024-02-15T07:00:00Z', [NY_SUB, { phoneNumber: CHI, subscriptionDate: '2024-01-15', timeZone: 'America/Chicago', plan: 'gold' }]);
    const [goldId] = (await x.db.pool.query(`SELECT id FROM subscribers WHERE plan = 'gold'`)).rows.map((r) => r.id as string);
    const s = await runAt(x, '2024-02-15T07:00:00Z');
    expect(s.skipped).toEqual([{ subscriberId: goldId, reason: 'plan: unknown plan "gold"; known plans: standard, saver' }]);
    expect([s.subscribersConsidered, s.periodsDue, s.billsCreated]).toEqual([2, 1, 1]);
    expect((await readBills(x.db.pool)).map((b) => b.phoneNumber)).toEqual([NY]);
    // Still skipped, not forgotten, by the next run.
    expect((await runAt(x, '2024-02-15T08:00:00Z')).skipped).toEqual(s.skipped);
  });

  it('in chunks of one, the subscribers after the first chunk are all seen: billed, skipped, or their cursor placed', async () => {
    const phones = ['+12125550101', '+12125550102', '+12125550103', '+12125550104', '+12125550105'];
    const x = await setup('2024-02-15T07:00:00Z', [
      { phoneNumber: phones[0]!, subscriptionDate: '2024-01-15', timeZone: 'America/New_York' },
      { phoneNumber: phones[1]!, subscriptionDate: '2024-01-15', timeZone: 'America/New_York', plan: 'gold' },
      // Not due yet: its first period ends on March 10 (local midnight, still EST); the run places its cursor there.
      { phoneNumber: phones[2]!, subscriptionDate: '2024-02-10', timeZone: 'America/New_York' },
      { phoneNumber: phones[3]!, subscriptionDate: '2024-01-15', timeZone: 'America/New_York' },
      { phoneNumber: phones[4]!, subscriptionDate: '2024-01-15', timeZone: 'America/New_York', plan: 'gold' },
    ]);
    const ids = new Map((await x.db.pool.query<{ id: string; phone_number: string }>('SELECT id, phone_number FROM subscribers')).rows.map((r) => [r.phone_number, r.id]));
    x.clock.set('2024-02-15T07:00:00Z');
    const s = await x.runner({ config: { billingChunkSize: 1 } })({ asOf: '2024-02-15T07:00:00Z' });
    expect([s.subscribersConsidered, s.periodsDue, s.billsCreated]).toEqual([5, 2, 2]);
    expect(s.skipped.map((k) => k.subscriberId)).toEqual([ids.get(phones[1]!), ids.get(phones[4]!)]);
    expect((await readBills(x.db.pool)).map((b) => b.phoneNumber)).toEqual([phones[0], phones[3]]);
    const { rows } = await x.db.pool.query(`SELECT next_period_index AS idx, next_period_end AS end FROM billing_positions WHERE subscriber_id = $1`, [ids.get(phones[2]!)]);
    expect(rows).toEqual([{ idx: 0, end: new Date('2024-03-10T05:00:00Z') }]);
  });

  it('each run leaves a ledger row: as-of, finished, status, bills created, per-stage timings', async () => {
    const x = await setup('2024-03-15T05:00:00Z', [NY_SUB], [call(NY, JM, '2024-02-10T15:00:00Z', 1_000, { ingested: '2024-02-20T00:00:00Z' })]);
    const a = await runAt(x, '2024-02-15T06:00:00Z');
    const b = await runAt(x, '2024-03-15T05:00:00Z');
    const { rows } = await x.db.pool.query(`SELECT id, as_of, status, bills_created, timings, error, finished_at >= started_at AS finished FROM billing_runs ORDER BY as_of`);
    expect(rows.map((r) => [r.id, r.as_of.toISOString(), r.status, r.bills_created, r.error, r.finished])).toEqual([
      [a.runId, '2024-02-15T06:00:00.000Z', 'succeeded', 1, null, true],
      [b.runId, '2024-03-15T05:00:00.000Z', 'succeeded', 1, null, true],
    ]);
    expect(Object.keys(rows[1].timings).sort()).toEqual(['cursors', 'late', 'order', 'periods', 'rate', 'repair', 'selectDue', 'stage', 'write']);
    for (const v of Object.values(rows[1].timings)) expect(Number.isInteger(v) && (v as number) >= 0).toBe(true);
    expect(b.timingsMs).toEqual(rows[1].timings);
  });

  it('a chunk whose rating fails writes nothing, not even the cursors its writers moved while it was rated', async () => {
    const x = await setup('2024-03-15T05:00:00Z', [NY_SUB], [call(NY, CHI, '2024-01-20T15:00:00Z', 61_000)]);
    // A tariff whose standard plan starts after that call: the call cannot be rated, and the rating
    // query refuses the whole chunk rather than bill it at zero.
    const standard = tariff.plans.standard!;
    const late: Tariff = { ...tariff, plans: { ...tariff.plans, standard: { ...standard, versions: [{ ...standard.versions[0]!, effectiveFromMs: Date.parse('2024-01-21T00:00:00Z') }] } } };
    const runner = createBillingRunner({ store: x.store, ch: x.ch, clock: x.clock, log: silentLogger(), tariff: late, config: TEST_CONFIG });
    x.clock.set('2024-03-15T05:00:00Z');
    const err = await runner({ asOf: '2024-03-15T05:00:00Z' }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/1 call\(s\) of class 'domestic' cannot be rated by the tariff/);
    expect(await readBills(x.db.pool)).toEqual([]);
    const { rows } = await x.db.pool.query(`SELECT next_period_index, next_period_end = '-infinity' AS unplaced FROM billing_positions`);
    expect(rows).toEqual([{ next_period_index: 0, unplaced: true }]);
  });

  it('the calls table refuses a class it does not know, naming it', async () => {
    const x = await setup('2024-03-15T05:00:00Z', [NY_SUB]);
    const err = await x.ch.client.command({
      query: `INSERT INTO ${x.ch.table('calls')} (call_id, source_number, target_number, started_at, ended_at, duration_ms, source_country, target_country, call_class, ingested_at)
              VALUES ('bogus-1', '${NY}', '${CHI}', '2024-01-21 15:00:00.000', '2024-01-21 15:01:00.000', 60000, 'US', 'US', 'bogus', '2024-01-21 15:01:00.000')`,
    }).catch((e: Error) => e);
    expect(String((err as Error)?.message)).toMatch(/bogus/);
    const [{ n }] = await (await x.ch.client.query({ query: `SELECT count() AS n FROM ${x.ch.table('calls')}`, format: 'JSONEachRow' })).json<{ n: string }>();
    expect(Number(n)).toBe(0);
  });

  it('a run that fails after its first chunk is marked failed; the next run bills every remaining period', async () => {
    const x = await setup('2024-04-15T05:00:00Z', [NY_SUB, { phoneNumber: CHI, subscriptionDate: '2024-01-20', timeZone: 'America/Chicago' }],
      [call(NY, CHI, '2024-03-01T15:00:00Z', 60_000), call(CHI, NY, '2024-03-01T15:00:00Z', 120_000)]);
    // Periods: NY 0, 1, 2 (Feb 15, Mar 15, Apr 15), CHI 0, 1 (Feb 20, Mar 20). Chunks of 2 follow the
    // phone number, then the period: [NY 0, NY 1], [NY 2, CHI 0], [CHI 1], so NY's due periods span
    // two chunks. The second chunk's writes fail (each chunk is written as two transactions, one per
    // half of the subscribers: whichever halves NY and CHI fall in, both of its writes fail).
    const ids = new Map((await x.db.pool.query<{ id: string; phone_number: string }>('SELECT id, phone_number FROM subscribers')).rows.map((r) => [r.phone_number, r.id]));
    // The second chunk bills NY's period 2 and CHI's period 0 (its writes are those holding either).
    const secondChunk = (bills: RenderedBills) => holdsBill(bills, ids.get(NY)!, 2) || holdsBill(bills, ids.get(CHI)!, 0);
    const failing: BillingRunStore = {
      ...x.store,
      writeBills: async (bills) => {
        const rendered = await bills;
        if (secondChunk(rendered)) throw new Error('connection lost');
        return x.store.writeBills(rendered);
      },
    };
    const err = await x.runner({ store: failing, config: { billingChunkSize: 2 } })({ asOf: '2024-04-15T05:00:00Z' }).catch((e: Error) => e);
    expect((err as Error).message).toBe('connection lost');
    // The first chunk stays written, the third (rated while the second was written) is never written.
    expect((await readBills(x.db.pool)).map((b) => `${b.phoneNumber}/${b.periodIndex}`)).toEqual([`${NY}/0`, `${NY}/1`].sort());
    const failed = (await x.db.pool.query(`SELECT status, bills_created, error FROM billing_runs`)).rows;
    expect(failed).toEqual([{ status: 'failed', bills_created: 2, error: 'connection lost' }]);
    // Nothing the failed run staged in ClickHouse is left behind, the chunks it rated or not.
    for (const table of ['billing_stage_items', 'billing_stage_periods', 'billing_period_late']) {
      const [{ n }] = await (await x.ch.client.query({ query: `SELECT count() AS n FROM ${x.ch.table(table)}`, format: 'JSONEachRow' })).json<{ n: string }>();
      expect({ table, n: Number(n) }).toEqual({ table, n: 0 });
    }

    const resumed = await runAt(x, '2024-04-15T05:00:00Z');
    expect(resumed.billsCreated).toBe(3);
    const bills = await readBills(x.db.pool);
    expect(bills.map((b) => `${b.phoneNumber}/${b.periodIndex}/${b.totalCents}`)).toEqual([
      `${NY}/0/2000`, `${NY}/1/2005`, `${NY}/2/2000`, `${CHI}/0/2000`, `${CHI}/1/2010`,
    ].sort());
  });

  it('a run that fails on its first chunk leaves nothing staged, not even the chunk staged ahead while the first was rated', async () => {
    const x = await setup('2024-04-15T05:00:00Z', [NY_SUB], [call(NY, CHI, '2024-03-01T15:00:00Z', 60_000)]);
    const failing: BillingRunStore = { ...x.store, writeBills: async (bills) => { await bills; throw new Error('connection lost'); } };
    const staged = async () => {
      let n = 0;
      for (const table of ['billing_stage_items', 'billing_stage_periods']) {
        const [row] = await (await x.ch.client.query({ query: `SELECT count() AS n FROM ${x.ch.table(table)}`, format: 'JSONEachRow' })).json<{ n: string }>();
        n += Number(row!.n);
      }
      return n;
    };
    // NY's three due periods in chunks of one: the second is staged while the first is rated, and the
    // first's write fails before the second is rated.
    const err = await x.runner({ store: failing, config: { billingChunkSize: 1 } })({ asOf: '2024-04-15T05:00:00Z' }).catch((e: Error) => e);
    expect((err as Error).message).toBe('connection lost');
    expect(await staged()).toBe(0);
    expect(await readBills(x.db.pool)).toEqual([]);
  });
});
