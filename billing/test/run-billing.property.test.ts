/**
 * The SQL path against the reference rater: random subscribers and calls
 * (see support/scenario.ts: boundaries, month ends, leap day, DST weekends,
 * St_Johns to Honolulu, resends, late arrivals), a series of billing runs at
 * increasing asOf instants, then EVERY stored bill compared with
 * referenceBills over the same calls at the bills' own watermarks: period,
 * local dates, lines, total, to the cent. Also checked: each subscriber has
 * exactly the periods ended by the last run's cutoff, each issued by the
 * first run whose cutoff reached its end.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { storeCalls, type TestCall } from '../../test/calls.ts';
import { referenceBill, referenceBills, type RaterSubscriber } from '../domain/index.ts';
import { NARROW_CHUNK } from '../adapters/clickhouse/usage.ts';
import { addSubscribers, asStored, billingHarness, readBills, tariff, TEST_CONFIG, type StoredBill } from './support/harness.ts';
import { scenarioArb, type Scenario } from './support/scenario.ts';
import { iso, ms } from './support/calls.ts';

const NUM_RUNS = 14;
const SIZE = { minSubscribers: 100, maxSubscribers: 200, minCalls: 1500, maxCalls: 3500 };
const DAY = 86_400_000;

const totals = { dbMs: 0, refMs: 0, scenarios: 0, subscribers: 0, calls: 0, resends: 0, bills: 0, lateLines: 0, catchUpBills: 0, saverBills: 0, usageLines: 0 };

/** Runs the scenario through the real runner; returns what disagrees with the reference (empty when all agree). */
async function check(s: Scenario): Promise<string[]> {
  const t0 = performance.now();
  const h = await billingHarness({ now: s.runs[0]!.asOfMs });
  try {
    const ids = await addSubscribers(h.db.pool, s.subscribers);
    const problems: string[] = [];
    let stored = -Infinity;
    let created = 0;
    for (const [r, run] of s.runs.entries()) {
      // Calls reach ClickHouse in the order they were ingested, one batch per run (the last run also gets those ingested after it).
      const lastRun = r === s.runs.length - 1;
      await storeCalls(h.ch, s.calls.filter((c) => c.ingestedAtMs > stored && (lastRun || c.ingestedAtMs <= run.asOfMs)));
      stored = run.asOfMs;
      h.clock.set(run.asOfMs);
      // Every other run rates its chunk as a wide one (its range of callers, joined on the number's
      // text) rather than as a narrow one (its callers picked as integers), so both agree with the reference.
      const narrow = (r + totals.scenarios) % 2 === 0;
      const summary = await h.runner({ config: { billingWatermarkLagSeconds: run.lagSeconds, billingNarrowChunk: narrow ? NARROW_CHUNK : 0 } })({ asOf: run.asOfMs });
      if (summary.skipped.length) problems.push(`run ${r} skipped ${JSON.stringify(summary.skipped)}`);
      if (summary.periodsDue !== summary.billsCreated) problems.push(`run ${r}: ${summary.periodsDue} periods due, ${summary.billsCreated} bills created`);
      if (summary.periodsDue > summary.subscribersConsidered) totals.catchUpBills += summary.periodsDue - summary.subscribersConsidered;
      created += summary.billsCreated;
    }

    const bills = await readBills(h.db.pool);
    const t1 = performance.now();
    totals.dbMs += t1 - t0;
    if (bills.length !== created) problems.push(`${bills.length} bills stored, runs reported ${created}`);
    const byPhone = new Map<string, StoredBill[]>();
    for (const b of bills) (byPhone.get(b.phoneNumber) ?? byPhone.set(b.phoneNumber, []).get(b.phoneNumber)!).push(b);
    const callsBySource = new Map<string, TestCall[]>();
    for (const c of s.calls) (callsBySource.get(c.source) ?? callsBySource.set(c.source, []).get(c.source)!).push(c);
    const cutoffs = s.runs.map((r) => r.asOfMs - TEST_CONFIG.billingGraceSeconds * 1000);
    const lastCutoff = cutoffs[cutoffs.length - 1]!;

    s.subscribers.forEach((sub, i) => {
      const mine = byPhone.get(sub.phoneNumber) ?? [];
      const rater: RaterSubscriber = { id: ids[i]!, phoneNumber: sub.phoneNumber, subscriptionDate: sub.subscriptionDate, timeZone: sub.timeZone, plan: sub.plan ?? 'standard' };
      const who = `${sub.phoneNumber} (${sub.subscriptionDate} ${sub.timeZone} ${rater.plan})`;
      if (mine.some((b, k) => b.periodIndex !== k)) return void problems.push(`${who}: period indexes ${mine.map((b) => b.periodIndex)}`);
      // Exactly the periods ended by the last cutoff, each issued by the first run whose cutoff reached its end.
      const next = referenceBill({ tariff, subscriber: rater, calls: [], periodIndex: mine.length, watermarkMs: 0, previousWatermarkMs: null }).period;
      if (next.endMs <= lastCutoff) problems.push(`${who}: period ${mine.length} ended ${iso(next.endMs)} by the last cutoff but has no bill`);
      const expected = referenceBills({
        tariff, subscriber: rater, calls: callsBySource.get(sub.phoneNumber) ?? [],
        bills: mine.map((b) => ({ periodIndex: b.periodIndex, watermarkMs: ms(b.watermark) })),
      });
      mine.forEach((b, k) => {
        const runNo = cutoffs.findIndex((c) => c >= ms(b.periodEnd));
        const run = s.runs[runNo];
        const meta = run && b.issuedAt === iso(run.asOfMs) && b.watermark === iso(run.asOfMs - run.lagSeconds * 1000) && b.dueAt === iso(run.asOfMs + 21 * DAY) && b.status === 'open';
        if (!meta) problems.push(`${who} period ${k}: issued ${b.issuedAt} watermark ${b.watermark} due ${b.dueAt}, expected run ${runNo}`);
        const { issuedAt: _i, dueAt: _d, status: _s, ...got } = b;
        const want = asStored(sub.phoneNumber, expected[k]!);
        if (!isDeepStrictEqual(got, want)) {
          const theirCalls = (callsBySource.get(sub.phoneNumber) ?? []).map((c) => `${c.callId} ${c.target} ${iso(c.startMs)} +${c.endMs - c.startMs}ms ingested ${iso(c.ingestedAtMs)}`);
          problems.push(`${who} period ${k}:\n  sql       ${JSON.stringify(got)}\n  reference ${JSON.stringify(want)}\n  calls:\n    ${theirCalls.join('\n    ')}`);
        }
        totals.lateLines += b.lines.filter((l) => l.kind === 'late_usage').length;
        totals.usageLines += b.lines.filter((l) => l.kind !== 'late_usage' && l.kind !== 'monthly_service').length;
        if (rater.plan === 'saver') totals.saverBills += 1;
      });
    });
    totals.refMs += performance.now() - t1;
    totals.scenarios += 1;
    totals.subscribers += s.subscribers.length;
    totals.calls += new Set(s.calls.map((c) => c.callId)).size;
    totals.resends += s.calls.length - new Set(s.calls.map((c) => c.callId)).size;
    totals.bills += bills.length;
    return problems;
  } finally {
    await h.close();
  }
}

describe('billing run vs reference rater (fast-check)', () => {
  it(`agrees to the cent on every bill of ${NUM_RUNS} random scenarios`, async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb(SIZE), async (s) => {
        const problems = await check(s);
        if (problems.length) throw new Error(`${problems.length} disagreement(s); first:\n${problems.slice(0, 3).join('\n')}`);
      }),
      // Each scenario is a few thousand calls through real databases: report the first failure as is rather than shrink.
      { numRuns: NUM_RUNS, endOnFailure: true },
    );
  }, 240_000);

  afterAll(() => {
    // The property means something only if the scenarios reached the interesting cases.
    if (totals.scenarios < NUM_RUNS) return;
    console.log(`billing property: ${JSON.stringify(totals)}`);
    expect(totals.subscribers).toBeGreaterThanOrEqual(NUM_RUNS * SIZE.minSubscribers);
    expect(totals.calls).toBeGreaterThanOrEqual(NUM_RUNS * SIZE.minCalls);
    expect(totals.resends).toBeGreaterThan(100);
    expect(totals.lateLines).toBeGreaterThan(50);
    expect(totals.catchUpBills).toBeGreaterThan(50);
    expect(totals.saverBills).toBeGreaterThan(100);
  });
});
