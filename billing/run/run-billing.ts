/**
 * runBilling({ asOf }): bills every period that ended at or before
 * asOf − grace and has no bill yet, catch-up included. Called the same way
 * by node-cron, the CLI, the HTTP API and the tests.
 *
 * One runner at a time across replicas (a PostgreSQL advisory lock). Work is
 * done in chunks of subscribers in phone-number order: stage the chunk's due
 * periods in ClickHouse, rate their usage there in one query (reading only
 * the chunk's callers' range of the calls) that also renders each bill's row
 * for PostgreSQL's binary COPY, then write the chunk's bills in two PostgreSQL
 * transactions (each a disjoint half of the subscribers, a subscriber's bills
 * always in the same one) while the next chunk is rated. Subscribers who share
 * subscription date and zone (every period) follow their group's cursor, which
 * the run moves once every bill is in (settleRun); a cursor of a subscriber's
 * own moves with its bills (each bill names the end of the period after it,
 * and the COPY that inserts it moves the cursor there: a trigger). A run
 * killed at any point never settles: the next run first gives the following
 * subscribers it billed cursors of their own past their bills
 * (repairUnsettled), then finds the rest through the cursors, and the unique
 * keys on bills make a repeated chunk create nothing.
 *
 * Watermark: a bill covers the calls ingested at or before W =
 * min(asOf, now) − lag. Calls of a billed period ingested after its bill's W
 * go on the subscriber's next bill as late usage, once.
 */
import type { Clock } from '../../core/clock.ts';
import { toMillis } from '../../core/clock.ts';
import type { Logger } from '../../core/log.ts';
import type { ClickHouse } from '../../core/clickhouse/client.ts';
import { isDomainError } from '../../core/errors.ts';
import { CALL_CLASSES, lateUsageDescription, lineAmountCents, periodAt, periodContaining, planOf, type Period, type Tariff } from '../domain/index.ts';
import { billsByWriter, dropItems, lateUsage, NARROW_CHUNK, renderBills, stageItems, stageLate, writerOf, type LateLines, type LateRow, type StagedPeriod, type TariffArrays, type UsageItem } from '../adapters/clickhouse/usage.ts';
import type { BillingRunStore, BillLineDoc, CursorUpdate, DueSubscriber, GroupMove, RenderedBills } from '../adapters/postgres/billing-runs.ts';

export interface BillingRunConfig {
  billingGraceSeconds: number;
  billingDueDays: number;
  billingWatermarkLagSeconds: number;
  billingChunkSize: number;
  /**
   * Chunks of up to this many periods (a day's cohort, scattered over the callers) pick their calls
   * by caller; larger ones read their range of callers. Default NARROW_CHUNK (50,000).
   */
  billingNarrowChunk?: number;
}

export interface BillingRunSummary {
  runId: string;
  asOf: string;
  /** Periods ending at or before this instant were due. */
  cutoff: string;
  watermark: string;
  subscribersConsidered: number;
  periodsDue: number;
  billsCreated: number;
  /** Subscribers skipped with the reason (e.g. an unknown plan); they are retried by the next run. */
  skipped: { subscriberId: string; reason: string }[];
  timingsMs: Record<string, number>;
}

export interface BillingRunnerDeps {
  store: BillingRunStore;
  ch: ClickHouse;
  clock: Clock;
  log: Logger;
  tariff: Tariff;
  config: BillingRunConfig;
  /** Called inside the run lock after the bills are written (overdue evaluation hooks in here). */
  afterBills?: (asOfMs: number) => Promise<Record<string, unknown> | void>;
}

export type RunBilling = (opts?: { asOf?: number | string | Date }) => Promise<BillingRunSummary>;

const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();

/** The tariff as the arrays the SQL indexes; plan numbers are 1-based positions in plans. */
export function tariffArrays(t: Tariff): { arrays: TariffArrays; planNo: Map<string, number> } {
  const ids = Object.keys(t.plans);
  const plans = ids.map((id) => t.plans[id]!);
  return {
    planNo: new Map(ids.map((id, i) => [id, i + 1])),
    arrays: {
      classes: [...CALL_CLASSES],
      versionFrom: plans.map((p) => p.versions.map((v) => v.effectiveFromMs)),
      rates: plans.map((p) => p.versions.map((v) => CALL_CLASSES.map((c) => v.classes[c].rateMilliCentsPerMinute))),
      increments: plans.map((p) => p.versions.map((v) => CALL_CLASSES.map((c) => v.classes[c].incrementSeconds))),
      descriptions: plans.map((p) => p.versions.map((v) => CALL_CLASSES.map((c) => v.classes[c].description))),
      monthly: plans.map((p) => p.versions.map((v) => ({ description: v.monthlyDescription, cents: v.monthlyCents }))),
      currencies: plans.map((p) => p.currency),
    },
  };
}

/**
 * A due period of a group of subscribers (they share it, its late-usage window, and the end of
 * the period after it, where their cursors go once it is billed). `stagedIn` is the last chunk
 * that staged it.
 */
interface GroupPeriod extends StagedPeriod { stagedIn: number }

/** What a group of due subscribers (DueSubscriber.group) has due, or why none of it can be billed. */
type GroupDue = { periods: GroupPeriod[]; notDue: Period } | { error: Error };

/** A due (subscriber, period): one bill. */
interface Due extends UsageItem { sub: DueSubscriber; gp: GroupPeriod }

/** A chunk being staged (or staged) in ClickHouse, with what its rating needs. */
interface StagedChunk {
  chunk: Due[];
  /** The chunk's items by writer (each writer's in item order). */
  halves: Due[][];
  stageId: string;
  staging: Promise<void>;
  /** Its periods' instants (ms, half-open), and those of the periods with late usage to look for. */
  time: { lo: number; hi: number };
  late: { lo: number; hi: number; minAfter: number };
  lateCount: number;
  sources: { lo: string; hi: string };
}

export function createBillingRunner(deps: BillingRunnerDeps): RunBilling {
  const { store, ch, clock, log, tariff, config } = deps;
  const { arrays, planNo } = tariffArrays(tariff);
  const narrowChunk = config.billingNarrowChunk ?? NARROW_CHUNK;

  return async function runBilling(opts = {}) {
    // Periods per (subscription date, zone): subscribers who share both share every period.
    const byAnchor = new Map<string, Period[]>();
    const periodsOf = (sub: DueSubscriber): Period[] => {
      const key = `${sub.subscriptionDate}|${sub.timeZone}`;
      let list = byAnchor.get(key);
      if (!list) byAnchor.set(key, (list = []));
      return list;
    };
    let periodNos = 0;
    /** The due periods of sub's group (every subscriber of the group has the same). */
    const groupDue = (sub: DueSubscriber): GroupDue => {
      try {
        const pno = planNo.get(sub.plan);
        if (pno === undefined) planOf(tariff, sub.plan); // throws the named error
        const periods = periodsOf(sub);
        const first = (periods[0] ??= periodAt(sub, 0));
        let lateAfterMs = sub.lastWatermarkMs ?? 0;
        const due: GroupPeriod[] = [];
        let idx = sub.nextPeriodIndex ?? 0;
        let p = (periods[idx] ??= periodAt(sub, idx));
        for (; p.endMs <= cutoffMs; idx++, p = (periods[idx] ??= periodAt(sub, idx))) {
          const prev = due[due.length - 1];
          if (prev) prev.nextPeriodEndMs = p.endMs;
          due.push({
            periodNo: periodNos++, planNo: pno!, periodStartMs: p.startMs, periodEndMs: p.endMs, lateAfterMs, firstStartMs: first.startMs,
            periodIndex: p.index, periodStartLocal: p.startLocal, periodEndLocal: p.endLocal, nextPeriodEndMs: NaN, stagedIn: -1,
          });
          lateAfterMs = 0; // a later period billed in this same run has no late window
        }
        const last = due[due.length - 1];
        if (last) last.nextPeriodEndMs = p.endMs;
        return { periods: due, notDue: p };
      } catch (e) {
        if (!isDomainError(e)) throw e;
        return { error: e };
      }
    };
    const asOfMs = opts.asOf === undefined ? clock.now() : toMillis(opts.asOf);
    const cutoffMs = asOfMs - config.billingGraceSeconds * 1000;
    const watermarkMs = Math.min(asOfMs, clock.now()) - config.billingWatermarkLagSeconds * 1000;
    const timings: Record<string, number> = {};
    /** Staged items being dropped; all settle before the run ends. */
    const drops: Promise<unknown>[] = [];
    /**
     * The staged chunks rated, dropped once no rating follows: a DROP PARTITION sent as the next
     * chunk's rating was sent held that rating back (traced: the engine's query threads idle for
     * 1.5 s after it was sent) and itself returned only when the run's last rating had ended.
     */
    const rated: string[] = [];
    const dropRated = () => { for (const stageId of rated.splice(0)) drops.push(dropStaged(stageId)); };
    /** Adds the time since t0 to a stage's. */
    const addTime = (stage: string, t0: number) => { timings[stage] = Math.round((timings[stage] ?? 0) + performance.now() - t0); };
    const timed = async <T>(stage: string, fn: () => Promise<T>): Promise<T> => {
      const t0 = performance.now();
      try { return await fn(); } finally { addTime(stage, t0); }
    };

    return store.withRunLock(60_000, async () => {
      const runId = await store.startRun(asOfMs);
      const rlog = log.child({ runId });
      rlog.info({ asOf: iso(asOfMs), cutoff: iso(cutoffMs), watermark: iso(watermarkMs) }, 'billing run started');
      let billsCreated = 0;
      const skipped: BillingRunSummary['skipped'] = [];
      try {
        // Subscribers billed by a run that never settled follow their groups no more (the groups
        // did not move past their bills).
        const pinned = await timed('repair', () => store.repairUnsettled(runId));
        if (pinned) rlog.warn({ pinned }, 'subscribers billed by an unfinished run now have cursors of their own');
        const subs = await timed('selectDue', () => store.dueSubscribers(cutoffMs));
        // In phone-number order, so that the periods below come out in it too (a subscriber's in order).
        const ordered = await timed('order', async () => byPhoneNumber(subs));
        const due: Due[] = [];
        const cursorsNotDue: CursorUpdate[] = [];
        const groups: GroupDue[] = [];
        /** Where each billing group's cursor goes once every bill is in (its members following it). */
        const groupMoves = new Map<number, GroupMove>();
        /** Following subscribers not billed (skipped): pinned where their group stands before it moves. */
        const pins: string[] = [];
        let seen = 0;
        /**
         * Works the due periods of the subscribers out, in order, until `due` holds `n` or every
         * subscriber is done: a chunk's, just before it is staged (a catch-up's first chunk is staged
         * after a third of them, not all; the rest are worked out while the engine rates).
         */
        const dueUpTo = (n: number) => {
          const t0 = performance.now();
          for (; due.length < n && seen < ordered.length; seen++) {
            const sub = ordered[seen]!;
            let g = groups[sub.group];
            if (!g) {
              g = groups[sub.group] = groupDue(sub);
              if (sub.billingGroup !== undefined && !('error' in g)) {
                const last = g.periods[g.periods.length - 1];
                // Subscribers of one billing group and different plans come as groups of their own here,
                // with the same periods: the same move.
                if (last) groupMoves.set(sub.billingGroup, { groupId: sub.billingGroup, nextPeriodIndex: last.periodIndex + 1, nextPeriodEndMs: last.nextPeriodEndMs, lastWatermarkMs: watermarkMs });
                else if (sub.nextPeriodIndex === undefined) groupMoves.set(sub.billingGroup, { groupId: sub.billingGroup, nextPeriodIndex: g.notDue.index, nextPeriodEndMs: g.notDue.endMs, lastWatermarkMs: null });
              }
            }
            if ('error' in g) {
              if (sub.billingGroup !== undefined) pins.push(sub.id);
              skipped.push({ subscriberId: sub.id, reason: g.error.message });
              rlog.error({ subscriberId: sub.id, err: g.error }, 'subscriber cannot be billed');
              continue;
            }
            if (g.periods.length === 0) {
              if (sub.nextPeriodIndex === undefined && sub.billingGroup === undefined) cursorsNotDue.push({ subscriberId: sub.id, nextPeriodIndex: g.notDue.index, nextPeriodEndMs: g.notDue.endMs, lastWatermarkMs: null });
              continue;
            }
            const writer = writerOf(sub.id);
            for (const gp of g.periods) due.push({ itemNo: due.length, sourceNumber: sub.phoneNumber, periodNo: gp.periodNo, writer, subscriberId: sub.id, sub, gp });
          }
          addTime('periods', t0);
        };
        // Chunks are runs of subscribers in phone-number order (a subscriber's periods in order):
        // each chunk's rating query reads only its own range of the calls' primary key, so the
        // chunks together read the calls once, however many there are. The next chunk is staged
        // while this one is rated (so its rating starts as soon as this one's ends), and rated in
        // ClickHouse while this one is written to PostgreSQL.
        let rating: Promise<Buffer> | undefined;
        let writing: Promise<number> | undefined;
        let next: StagedChunk | undefined;
        let written = 0;
        const settle = async () => {
          if (!writing) return;
          const w = writing;
          writing = undefined;
          billsCreated += await w;
          rlog.info({ done: written, of: due.length, billsCreated }, 'billing progress');
        };
        const size = config.billingChunkSize;
        try {
          dueUpTo(size);
          if (due.length) next = stageChunk(runId, due.slice(0, size), 0);
          for (let i = 0; i < due.length; i += size) {
            const staged = next!;
            next = undefined; // what rateChunk staged is dropped once rated (or failed)
            rating = rateChunk(runId, staged);
            // The rendered bills sorted out by writer on a later turn of the event loop, once the next
            // chunk's rating is sent (~0.1-0.3 s of the main thread per 100,000 bills, while the engine
            // would otherwise wait).
            const bills = rating.then((data) => new Promise<RenderedBills[]>((resolve, reject) => setImmediate(() => {
              try { resolve(billsByWriter(data, staged.halves)); } catch (e) { reject(e); }
            })));
            // All are awaited below; handled here too, as any may fail while the others run.
            rating.catch(() => {});
            bills.catch(() => {});
            // The next chunk's periods, and its staging, once this chunk's rating is sent (it is, once
            // this turn ends).
            await new Promise<void>((resolve) => setImmediate(resolve));
            dueUpTo(i + 2 * size);
            next = i + size < due.length ? stageChunk(runId, due.slice(i + size, i + 2 * size), i + size, staged.staging) : undefined;
            // The previous chunk's write ends while this chunk is rated; this chunk's write then
            // starts once the chunk is staged (its transactions open while its bills are rated).
            await settle();
            await staged.staging.catch(() => {});
            writing = writeChunk(staged.halves, bills);
            writing.catch(() => {});
            written += staged.chunk.length;
            await rating;
          }
          // Rated, all of it: the staged chunks are dropped while the last one is written.
          dropRated();
          await settle();
        } finally {
          // Nothing of this run is still going when it ends: the run lock is released after. A chunk
          // staged but never rated (the run failed first) is dropped too.
          if (next) { const n = next; drops.push(n.staging.catch(() => {}).then(() => dropStaged(n.stageId))); }
          await Promise.allSettled([rating]);
          dropRated();
          await Promise.allSettled([writing, ...drops]);
        }
        // Every bill is in: the groups move past them, in one transaction with the cursors placed
        // and the pins, which marks the run settled.
        await timed('cursors', () => store.settleRun(runId, { cursors: cursorsNotDue, pins, groups: [...groupMoves.values()] }));
        if (deps.afterBills) await timed('afterBills', async () => { await deps.afterBills!(asOfMs); });
        await store.finishRun(runId, { status: 'succeeded', billsCreated, timings });
        const summary: BillingRunSummary = {
          runId, asOf: iso(asOfMs), cutoff: iso(cutoffMs), watermark: iso(watermarkMs),
          subscribersConsidered: subs.length, periodsDue: due.length, billsCreated, skipped, timingsMs: timings,
        };
        rlog.info({ ...summary, skipped: skipped.length }, 'billing run finished');
        return summary;
      } catch (err) {
        rlog.error({ err }, 'billing run failed');
        await store.finishRun(runId, { status: 'failed', billsCreated, timings, error: String((err as Error)?.message ?? err) }).catch(() => {});
        throw err;
      }
    });

    /** Drops what a chunk staged; a failure is logged, not thrown (the partitions are the run's own). */
    function dropStaged(stageId: string): Promise<void> {
      return dropItems(ch.beside(), stageId).catch((err) => log.warn({ err, stageId }, 'could not drop staged billing items'));
    }

    /**
     * Stages a chunk's items and due periods in ClickHouse; `staging` settles when they are in. It
     * runs on the engine's second connection, so beside the rating of the chunk before it (on one
     * connection it waited for that rating, and the next rating waited for it), and only once the
     * chunk before it (`after`) is staged: the rating waits for that one first.
     */
    function stageChunk(runId: string, chunk: Due[], chunkNo: number, after?: Promise<unknown>): StagedChunk {
      // Short (it is on every staged row): 48 random bits of the run's id, and the chunk.
      const stageId = `${runId.replaceAll('-', '').slice(0, 12)}_${chunk[0]!.itemNo}`;
      // The writers' halves of the subscribers: the rating renders each half's bills as one block.
      const halves: Due[][] = [[], []];
      for (const d of chunk) halves[d.writer]!.push(d);
      // The chunk's due periods, each once; their bounds; how many items have late usage to look for.
      const periods: GroupPeriod[] = [];
      let lateCount = 0;
      for (const d of chunk) {
        if (d.gp.stagedIn !== chunkNo) { d.gp.stagedIn = chunkNo; periods.push(d.gp); }
        if (d.gp.lateAfterMs > 0) lateCount++;
      }
      const time = { lo: Infinity, hi: -Infinity };
      const late = { lo: Infinity, hi: -Infinity, minAfter: Infinity };
      for (const p of periods) {
        if (p.periodStartMs < time.lo) time.lo = p.periodStartMs;
        if (p.periodEndMs > time.hi) time.hi = p.periodEndMs;
        if (p.lateAfterMs > 0) {
          if (p.firstStartMs < late.lo) late.lo = p.firstStartMs;
          if (p.periodStartMs > late.hi) late.hi = p.periodStartMs;
          if (p.lateAfterMs < late.minAfter) late.minAfter = p.lateAfterMs;
        }
      }
      // The run calls this once the rating of the chunk before it is sent (building the rows takes
      // ~0.2 s for 100,000 items: before, that query waited for them).
      const staging = (async () => {
        await after?.catch(() => {});
        await timed('stage', () => stageItems(ch.beside(), stageId, chunk, periods));
      })();
      staging.catch(() => {}); // awaited by the chunk's rating, and by the run before it ends
      return {
        chunk, halves, stageId, staging, time, late, lateCount,
        // The chunk's range of callers (it is in phone-number order): the calls' primary key skips the rest.
        sources: { lo: chunk[0]!.sub.phoneNumber, hi: chunk[chunk.length - 1]!.sub.phoneNumber },
      };
    }

    /**
     * Rates a staged chunk's usage in ClickHouse (late usage first, the few periods with any
     * getting their late lines staged), and has the engine render every bill as a binary COPY
     * tuple (billsByWriter sorts them into a block per writer).
     */
    async function rateChunk(runId: string, s: StagedChunk): Promise<Buffer> {
      try {
        await s.staging;
        let withLate = false;
        if (s.lateCount) {
          const rows = await timed('late', () => lateUsage(ch, s.stageId, arrays, watermarkMs, { lo: s.late.lo, hi: s.late.hi }, s.sources, s.late.minAfter, s.lateCount <= narrowChunk));
          const late = lateLinesOf(s.chunk, rows);
          await timed('late', () => stageLate(ch, s.stageId, late));
          withLate = late.length > 0;
        }
        const runFields = { runId, issuedAtMs: asOfMs, dueAtMs: asOfMs + config.billingDueDays * DAY, watermarkMs };
        return await timed('rate', () => renderBills(ch, s.stageId, arrays, runFields, s.time, s.sources, withLate, s.chunk.length <= narrowChunk));
      } finally {
        // Dropped once the run's ratings are over (dropRated).
        rated.push(s.stageId);
      }
    }

    /**
     * Writes a chunk's bills in two transactions on two connections, each with a disjoint half of
     * the subscribers (a subscriber's bills, and so its cursor's move, commit together), on two
     * backends at once. Each opens while the chunk is rated and writes its bills when rated.
     */
    async function writeChunk(halves: Due[][], rating: Promise<RenderedBills[]>): Promise<number> {
      let ratedAt = 0;
      rating.then(() => { ratedAt = performance.now(); }, () => {});
      // Both settle before the chunk returns or throws.
      const settled = await Promise.allSettled(halves.map((h, w) => (h.length === 0 ? Promise.resolve(0)
        : store.writeBills(rating.then((r) => r[w]!)))));
      // The write's time is what it adds after the chunk was rated.
      if (ratedAt) timings.write = Math.round((timings.write ?? 0) + performance.now() - ratedAt);
      let created = 0;
      for (const r of settled) if (r.status === 'fulfilled') created += r.value;
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      return created;
    }
  };
}

/** The late lines of the chunk's periods that have late calls, as their bills show them. */
function lateLinesOf(chunk: Due[], rows: LateRow[]): LateLines[] {
  const first = chunk[0]!.itemNo; // item numbers are consecutive within a chunk
  const byItem = new Map<number, LateRow[]>();
  for (const r of rows) (byItem.get(r.itemNo) ?? byItem.set(r.itemNo, []).get(r.itemNo)!).push(r);
  return [...byItem].map(([itemNo, itemRows]) => {
    const lines = lateLines(chunk[itemNo - first]!, itemRows);
    return { itemNo, cents: lines.reduce((a, l) => a + l.amountCents, 0), linesJson: lines.map((l) => `,${JSON.stringify(l)}`).join('') };
  });
}

/** One late-usage line per earlier period the late calls belong to, oldest first, amount rounded once per line. */
function lateLines(d: Due, rows: LateRow[]): BillLineDoc[] {
  const byPeriod = new Map<number, { period: Period; calls: number; secs: number; units: bigint; premiumUnits: bigint }>();
  for (const r of rows) {
    const p = periodContaining(d.sub, r.bucketStartMs);
    if (!p) continue; // impossible: the SQL bounds calls to the subscriber's own periods
    const acc = byPeriod.get(p.index) ?? byPeriod.set(p.index, { period: p, calls: 0, secs: 0, units: 0n, premiumUnits: 0n }).get(p.index)!;
    acc.calls += r.calls; acc.secs += r.billableSeconds; acc.units += r.milliCentMinutes;
    if (r.callClass === 'premium') acc.premiumUnits += r.milliCentMinutes;
  }
  return [...byPeriod.values()].sort((a, b) => a.period.index - b.period.index).map((a) => {
    const amountCents = lineAmountCents(a.units);
    const line: BillLineDoc = {
      kind: 'late_usage',
      description: lateUsageDescription(a.period),
      calls: a.calls, billableSeconds: a.secs, amountCents,
      usagePeriodStart: iso(a.period.startMs), usagePeriodEnd: iso(a.period.endMs),
    };
    // The premium share of a line rounded once: never more than the line itself.
    if (a.premiumUnits > 0n) line.premiumCents = Math.min(amountCents, lineAmountCents(a.premiumUnits));
    return line;
  });
}

/** The ten digits of a +1 and ten-digit number as a number (their text order is its order), or NaN. */
function digitsOf(phoneNumber: string): number {
  if (phoneNumber.length !== 12 || phoneNumber.charCodeAt(0) !== 43 /* + */ || phoneNumber.charCodeAt(1) !== 49 /* 1 */) return NaN;
  let n = 0;
  for (let i = 2; i < 12; i++) {
    const d = phoneNumber.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return NaN;
    n = n * 10 + d;
  }
  return n;
}

/**
 * Subscribers in phone-number order. Their numbers are unique (the schema's key) and each is +1
 * and ten digits, so the ten digits ordered as numbers give the text's order: each subscriber's
 * digits times n plus its position, exact in a double while that stays under 2^53 (ten digits
 * times up to 900,000 subscribers), sorted natively as a Float64Array, and each position read
 * back as the key modulo n (a comparator sort of 300,000 texts took ~0.5 s, ahead of everything
 * else a run does). Numbers in another form, or repeated, are ordered by comparing the texts
 * instead, as are bases too large for the packing.
 */
export function byPhoneNumber<T extends { phoneNumber: string }>(subs: readonly T[]): T[] {
  const byText = () => [...subs].sort((a, b) => (a.phoneNumber < b.phoneNumber ? -1 : a.phoneNumber > b.phoneNumber ? 1 : 0));
  const n = subs.length;
  if (n * 1e10 > Number.MAX_SAFE_INTEGER) return byText();
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const digits = digitsOf(subs[i]!.phoneNumber);
    if (Number.isNaN(digits)) return byText();
    keys[i] = digits * n + i;
  }
  keys.sort();
  const out = new Array<T>(n);
  let previous = -1;
  for (let k = 0; k < n; k++) {
    const key = keys[k]!;
    const at = key % n;
    const digits = (key - at) / n; // exact: key - at is digits * n
    // Equal digits sort next to each other: a repeated number.
    if (digits === previous) return byText();
    previous = digits;
    out[k] = subs[at]!;
  }
  return out;
}
