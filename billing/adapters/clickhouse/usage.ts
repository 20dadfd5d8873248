/**
 * Usage and rating, as SQL in ClickHouse. The run stages its work list
 * (one row per due subscriber period) in `billing_items`, then one query per
 * chunk joins it with `calls` and returns per-period, per-class sums with
 * rating done in the engine: each call's duration rounded up to its class
 * increment, multiplied by the rate of the tariff version in force at the
 * call's start, summed per line, rounded once, half up, to the cent. No
 * individual call travels to Node.
 *
 * Calls are read with FINAL over narrow ranges: a call stored twice (two
 * racing ingest replicas) counts once, its first stored copy winning, before
 * any merge.
 */
import { insertTabSeparated, queryBytes, type ClickHouse } from '../../../core/clickhouse/client.ts';
import { dateTime64Field } from '../../../core/clickhouse/datetime.ts';

/** The tariff flattened into arrays the SQL indexes (1-based, as ClickHouse arrays are). */
export interface TariffArrays {
  classes: string[];
  /** Per plan: version start instants (ms), ascending. */
  versionFrom: number[][];
  /** Per plan, per version, per class: rate in milli-cents per minute. */
  rates: number[][][];
  /** Per plan, per version, per class: increment in seconds. */
  increments: number[][][];
  /** Per plan, per version, per class: the line's description on a bill. */
  descriptions: string[][][];
}

export interface UsageItem {
  itemNo: number;
  sourceNumber: string;
  /** 1-based index into TariffArrays' plans. */
  planNo: number;
  periodStartMs: number;
  periodEndMs: number;
  /** Previous bill's watermark; 0 when the bill has no late usage to look for. */
  lateAfterMs: number;
  /** Start of the subscriber's first period: nothing before it is theirs. */
  firstStartMs: number;
}

/**
 * A period's usage as its bill stores it: the per-class lines already rendered
 * as JSON (each preceded by a comma, in the tariff's class order, so the caller
 * splices them after the monthly line), as the bytes ClickHouse sent (UTF-8,
 * a view into the query's result), and their amounts' sum in cents.
 */
export interface ItemUsage { usageCents: number; linesJson: Buffer }
/** Late calls, summed per 30-minute bucket of their start (every local midnight in North America falls on one). */
export interface LateRow { itemNo: number; callClass: string; bucketStartMs: number; calls: number; billableSeconds: number; milliCentMinutes: bigint }

const dt = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');

const ITEM_COLUMNS = ['run_id', 'item_no', 'source_number', 'plan_no', 'period_start', 'period_end', 'late_after', 'first_start'] as const;

export async function stageItems(ch: ClickHouse, runId: string, items: UsageItem[]): Promise<void> {
  const CHUNK = 100_000;
  // Instants repeat across a run (a cohort shares its period bounds): each is formatted once.
  const fields = new Map<number, string>();
  const field = (ms: number) => {
    let f = fields.get(ms);
    if (f === undefined) fields.set(ms, (f = dateTime64Field(ms)));
    return f;
  };
  let buf = Buffer.allocUnsafe(128 * Math.min(CHUNK, items.length));
  for (let i = 0; i < items.length; i += CHUNK) {
    // Each line goes straight into one Buffer: a chunk's lines held as strings (then joined) lived
    // long enough to be promoted, and garbage collection was most of staging's time.
    let len = 0;
    for (let j = i; j < Math.min(i + CHUNK, items.length); j++) {
      const it = items[j]!;
      // Instants as epoch milliseconds: parsed several times faster than text (0 stays the epoch).
      const line = `${runId}\t${it.itemNo}\t${it.sourceNumber}\t${it.planNo}\t${field(it.periodStartMs)}\t${field(it.periodEndMs)}\t${field(it.lateAfterMs)}\t${field(it.firstStartMs)}\n`;
      if (buf.length - len < line.length) { const next = Buffer.allocUnsafe(buf.length * 2 + line.length); buf.copy(next, 0, 0, len); buf = next; }
      len += buf.write(line, len, 'latin1');
    }
    await insertTabSeparated(ch, 'billing_items', ITEM_COLUMNS, buf.subarray(0, len));
  }
}

export async function dropItems(ch: ClickHouse, runId: string): Promise<void> {
  await ch.client.command({ query: `ALTER TABLE ${ch.table('billing_items')} DROP PARTITION {run:String}`, query_params: { run: runId } });
}

const maxVersionsOf = (t: TariffArrays) => Math.max(...t.versionFrom.map((v) => v.length));

/**
 * The per-call rating expressions, shared by the usage, late and itemized
 * queries (c = calls, i = items). The version in force at the call's start is
 * counted with one comparison per version slot of the plan, not an
 * arrayCount lambda: that built a per-row array of the plan's version starts
 * (measured on 30M calls: ~0.5-0.8 s of CPU, against none without a lookup).
 */
export const ratedColumns = (t: TariffArrays) => `
  transform(c.call_class, {classes:Array(String)}, {classNos:Array(UInt8)}, toUInt8(0)) AS class_no,
  ${Array.from({ length: maxVersionsOf(t) }, (_, k) => `({vfromFlat:Array(DateTime64(3, 'UTC'))}[(i.plan_no - 1) * {maxVersions:UInt32} + ${k + 1}] <= c.started_at)`).join(' + ')} AS version_no,
  ((i.plan_no - 1) * {maxVersions:UInt32} + version_no - 1) * {classCount:UInt32} + class_no AS rate_slot,
  {incsFlat:Array(UInt32)}[rate_slot] AS inc,
  {ratesFlat:Array(UInt64)}[rate_slot] AS rate,
  if(inc = 0, 0, intDiv(c.duration_ms + inc * 1000 - 1, inc * 1000) * inc) AS bsec,
  class_no = 0 OR version_no = 0 AS unrated`;

/**
 * The tariff as query parameters: rates and increments flattened to one array
 * indexed by (plan, version, class), so each call costs one array read.
 */
export const tariffParams = (t: TariffArrays) => {
  const maxVersions = maxVersionsOf(t);
  const classCount = t.classes.length;
  const ratesFlat: number[] = [];
  const incsFlat: number[] = [];
  t.rates.forEach((plan, p) => {
    for (let v = 0; v < maxVersions; v++) {
      for (let c = 0; c < classCount; c++) {
        ratesFlat.push(plan[v]?.[c] ?? 0);
        // A slot past a plan's last version is never chosen (version_no counts that plan's versions).
        incsFlat.push(t.increments[p]![v]?.[c] ?? 0);
      }
    }
  });
  return {
    classes: t.classes,
    classNos: t.classes.map((_, i) => i + 1),
    vfrom: t.versionFrom.map((v) => v.map(dt)),
    // Version starts by (plan, version slot); a slot past a plan's last version starts after any call.
    vfromFlat: t.versionFrom.flatMap((v) => Array.from({ length: maxVersions }, (_, k) => (k < v.length ? dt(v[k]!) : NEVER))),
    maxVersions, classCount, ratesFlat, incsFlat,
  };
};

/** Line texts for the SQL that renders bill lines: kinds and descriptions as JSON strings, descriptions by (plan, version, class) slot. */
const lineTextParams = (t: TariffArrays) => {
  const maxVersions = maxVersionsOf(t);
  const descsJson: string[] = [];
  for (const plan of t.descriptions) {
    for (let v = 0; v < maxVersions; v++) for (let c = 0; c < t.classes.length; c++) descsJson.push(JSON.stringify(plan[v]?.[c] ?? t.classes[c]));
  }
  return { kindsJson: t.classes.map((c) => JSON.stringify(c)), descsJson };
};

/** The last instant a DateTime64(3) holds. */
const NEVER = '2299-12-31 23:59:59.999';

const SETTINGS = `do_not_merge_across_partitions_select_final = 1`;

function parseTsv(text: string): string[][] {
  const out: string[][] = [];
  for (const line of text.split('\n')) if (line) out.push(line.split('\t'));
  return out;
}

function assertRated(unrated: string | undefined, callClass: string | undefined): void {
  if (Number(unrated) > 0) {
    throw new Error(`${unrated} call(s) of class '${callClass}' cannot be rated by the tariff (unknown class, or a start before the plan's first version)`);
  }
}

/**
 * A chunk of up to this many periods (a day's cohort) filters calls by
 * `PREWHERE source_number IN` the chunk, before FINAL: the primary key skips
 * what it can, and FINAL merges only the cohort's rows (safe: copies of a call
 * share the whole sorting key, so all or none pass). Measured on 30M calls and
 * a scattered 9,678-subscriber cohort: ~0.65 s against ~0.95 s without. A
 * catch-up's subscribers cover nearly every row, where the set only costs
 * (+4.7 s at 300,000 periods); the join alone selects their calls.
 */
export const NARROW_CHUNK = 50_000;

const narrowing = (itemCount: number, items: string, extra = '') =>
  itemCount <= NARROW_CHUNK ? `PREWHERE source_number IN (SELECT source_number FROM ${items} WHERE run_id = {run:String}${extra})` : '';

/** Bounds of a chunk: its periods' instants (ms, half-open) and its callers' numbers (inclusive). */
export interface TimeBounds { lo: number; hi: number }
export interface SourceBounds { lo: string; hi: string }

/**
 * Regular usage: calls that started inside each item's period and were
 * ingested at or before the watermark, rated, summed per class, and rendered
 * as the bill's usage lines: one short row per item with calls. Rendering in
 * the engine leaves Node one row per bill to splice (measured on 300,000
 * periods: ~4 s less CPU than 1.8M per-class rows parsed into objects and
 * serialized again). Fails loudly on a call the tariff cannot rate rather
 * than billing it at zero.
 */
export async function regularUsage(ch: ClickHouse, runId: string, t: TariffArrays, watermarkMs: number, time: TimeBounds, sources: SourceBounds, itemCount = NARROW_CHUNK): Promise<Map<number, ItemUsage>> {
  const items = ch.table('billing_items');
  const bytes = await queryBytes(ch, `
      SELECT item_no, sum(amount_cents) AS usage_cents, sum(unrated_calls) AS unrated, anyIf(bad_class, unrated_calls > 0) AS unrated_class,
             -- One line per class in the tariff's order, as BillLineDoc serializes: {kind, description, calls, billableSeconds, amountCents}.
             arrayStringConcat(arrayMap(l -> concat(',{"kind":', {kindsJson:Array(String)}[l.1], ',"description":',
                                                    {descsJson:Array(String)}[((l.2 - 1) * {maxVersions:UInt32} + l.3 - 1) * {classCount:UInt32} + l.1],
                                                    ',"calls":', toString(l.4), ',"billableSeconds":', toString(l.5), ',"amountCents":', toString(l.6), '}'),
                                    arraySort(groupArrayIf((class_no, plan_no, version_at_start, calls, line_seconds, amount_cents), class_no > 0)))) AS lines
      FROM (
        SELECT item_no, class_no, any(plan_no) AS plan_no, any(version_at_start) AS version_at_start, count() AS calls, sum(bsec) AS line_seconds,
               intDiv(sum(bsec * rate) + 30000, 60000) AS amount_cents, countIf(unrated) AS unrated_calls, anyIf(call_class, unrated) AS bad_class
        FROM (
          SELECT i.item_no AS item_no, i.plan_no AS plan_no, i.version_at_start AS version_at_start, c.call_class AS call_class, ${ratedColumns(t)}
          FROM (
            SELECT source_number, call_class, started_at, duration_ms FROM ${ch.table('calls')} FINAL
            ${narrowing(itemCount, items)}
            WHERE source_number >= {srcLo:String} AND source_number <= {srcHi:String}
              AND started_at >= {lo:DateTime64(3, 'UTC')} AND started_at < {hi:DateTime64(3, 'UTC')}
              AND ingested_at <= {w:DateTime64(3, 'UTC')}
          ) AS c
          INNER JOIN (
            -- Descriptions come from the version in force at the period's start (the first version, before any).
            SELECT item_no, source_number, plan_no, period_start, period_end,
                   greatest(arrayCount(x -> x <= period_start, {vfrom:Array(Array(DateTime64(3, 'UTC')))}[plan_no]), 1) AS version_at_start
            FROM ${items} WHERE run_id = {run:String}
          ) AS i ON c.source_number = i.source_number
          WHERE c.started_at >= i.period_start AND c.started_at < i.period_end
        )
        GROUP BY item_no, class_no
      )
      GROUP BY item_no
      SETTINGS ${SETTINGS}`,
    { run: runId, w: dt(watermarkMs), lo: dt(time.lo), hi: dt(time.hi), srcLo: sources.lo, srcHi: sources.hi, ...tariffParams(t), ...lineTextParams(t) },
    // Raw: the JSON text holds no tab or newline, and its backslashes must arrive as they are.
    'TabSeparatedRaw');
  // The rendered lines stay bytes (views into the result) all the way into the COPY of the bills:
  // decoding ~180 MB of them into strings and encoding them again was ~1.5 s of CPU per 300,000 bills.
  const out = new Map<number, ItemUsage>();
  const field = (from: number, to: number) => bytes.toString('latin1', from, to);
  for (let pos = 0; pos < bytes.length;) {
    const end = bytes.indexOf(10, pos);
    const a = bytes.indexOf(9, pos), b = bytes.indexOf(9, a + 1), c = bytes.indexOf(9, b + 1), d = bytes.indexOf(9, c + 1);
    if (end < 0 || d < 0 || d > end) throw new Error('rating query: a malformed result row');
    if (field(b + 1, c) !== '0') assertRated(field(b + 1, c), bytes.toString('utf8', c + 1, d));
    out.set(Number(field(pos, a)), { usageCents: Number(field(a + 1, b)), linesJson: bytes.subarray(d + 1, end) });
    pos = end + 1;
  }
  return out;
}

/**
 * Late usage: calls of a subscriber's earlier periods ingested after the
 * previous bill's watermark and at or before this one. Summed per 30-minute
 * bucket of the call's start so the caller can attribute each sum to the
 * period it belongs to (every North American local midnight is on a
 * half-hour UTC boundary). Old granules are skipped by the ingested_at index.
 */
export async function lateUsage(ch: ClickHouse, runId: string, t: TariffArrays, watermarkMs: number, time: TimeBounds, sources: SourceBounds, minLateAfterMs: number, itemCount = NARROW_CHUNK): Promise<LateRow[]> {
  const items = ch.table('billing_items');
  const rs = await ch.client.query({
    query: `
      SELECT item_no, call_class, bucket_ms, count() AS calls, sum(bsec) AS billable_seconds,
             sum(bsec * rate) AS milli_cent_minutes, countIf(unrated) AS unrated_calls
      FROM (
        -- In milliseconds, not toStartOfInterval: that returns a DateTime (seconds) for a DateTime64 on some engine versions.
        SELECT i.item_no AS item_no, c.call_class AS call_class, intDiv(toUnixTimestamp64Milli(c.started_at), 1800000) * 1800000 AS bucket_ms, ${ratedColumns(t)}
        FROM (
          SELECT source_number, call_class, started_at, duration_ms, ingested_at FROM ${ch.table('calls')} FINAL
          ${narrowing(itemCount, items, ` AND late_after > toDateTime64(0, 3, 'UTC')`)}
          WHERE source_number >= {srcLo:String} AND source_number <= {srcHi:String}
            AND started_at >= {lo:DateTime64(3, 'UTC')} AND started_at < {hi:DateTime64(3, 'UTC')}
            AND ingested_at > {minAfter:DateTime64(3, 'UTC')} AND ingested_at <= {w:DateTime64(3, 'UTC')}
        ) AS c
        INNER JOIN (SELECT item_no, source_number, plan_no, period_start, late_after, first_start FROM ${items}
                    WHERE run_id = {run:String} AND late_after > toDateTime64(0, 3, 'UTC')) AS i
          ON c.source_number = i.source_number
        WHERE c.started_at >= i.first_start AND c.started_at < i.period_start AND c.ingested_at > i.late_after
      )
      GROUP BY item_no, call_class, bucket_ms
      SETTINGS ${SETTINGS}`,
    query_params: { run: runId, w: dt(watermarkMs), lo: dt(time.lo), hi: dt(time.hi), srcLo: sources.lo, srcHi: sources.hi, minAfter: dt(minLateAfterMs), ...tariffParams(t) },
    format: 'TabSeparated',
  });
  return parseTsv(await rs.text()).map(([itemNo, callClass, bucket, calls, bsec, units, unrated]) => {
    assertRated(unrated, callClass);
    return { itemNo: Number(itemNo), callClass: callClass!, bucketStartMs: Number(bucket), calls: Number(calls), billableSeconds: Number(bsec), milliCentMinutes: BigInt(units!) };
  });
}

export interface ItemizedCall {
  callId: string;
  targetNumber: string;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  callClass: string;
  billableSeconds: number;
  /** Exact charge in charge units (1/60,000 cent); the line, not the call, is rounded to the cent. */
  chargeUnits: number;
  /** True for a call of an earlier period that arrived late and is billed here. */
  late: boolean;
}

export interface ItemizeQuery {
  sourceNumber: string;
  planNo: number;
  periodStartMs: number;
  periodEndMs: number;
  firstStartMs: number;
  watermarkMs: number;
  /** The previous bill's watermark; 0 for a first bill. */
  lateAfterMs: number;
  limit: number;
  /** Resume after this (startedAt ms, callId). */
  after?: { startedAtMs: number; callId: string };
}

/**
 * A bill's calls, reproducibly: its period's calls ingested up to the bill's
 * watermark, and the earlier periods' calls that arrived between the previous
 * bill's watermark and this one (its late usage). Ordered by start, then id.
 */
export async function itemizeCalls(ch: ClickHouse, t: TariffArrays, q: ItemizeQuery): Promise<ItemizedCall[]> {
  const rs = await ch.client.query({
    query: `
      SELECT call_id, target_number, s, e, duration_ms, call_class, bsec, units, is_late FROM (
        SELECT c.call_id AS call_id, c.target_number AS target_number, toUnixTimestamp64Milli(c.started_at) AS s,
               toUnixTimestamp64Milli(c.ended_at) AS e, c.duration_ms AS duration_ms, c.call_class AS call_class, c.started_at AS started_at,
               ${ratedColumns(t)}, bsec * rate AS units, c.started_at < {ps:DateTime64(3, 'UTC')} AS is_late
        FROM (
          SELECT call_id, target_number, started_at, ended_at, duration_ms, call_class, ingested_at FROM ${ch.table('calls')} FINAL
          WHERE source_number = {src:String} AND started_at >= {first:DateTime64(3, 'UTC')} AND started_at < {pe:DateTime64(3, 'UTC')}
            AND ingested_at <= {w:DateTime64(3, 'UTC')}
        ) AS c
        CROSS JOIN (SELECT toUInt16({plan:UInt16}) AS plan_no) AS i
        WHERE (c.started_at >= {ps:DateTime64(3, 'UTC')} OR c.ingested_at > {lateAfter:DateTime64(3, 'UTC')})
          AND (c.started_at, c.call_id) > ({afterStart:DateTime64(3, 'UTC')}, {afterId:String})
      )
      ORDER BY started_at, call_id
      LIMIT {limit:UInt32}
      SETTINGS ${SETTINGS}`,
    query_params: {
      src: q.sourceNumber, plan: q.planNo, first: dt(q.firstStartMs), ps: dt(q.periodStartMs), pe: dt(q.periodEndMs),
      w: dt(q.watermarkMs), lateAfter: dt(q.lateAfterMs > 0 ? q.lateAfterMs : q.watermarkMs),
      afterStart: dt(q.after?.startedAtMs ?? 0), afterId: q.after?.callId ?? '', limit: q.limit, ...tariffParams(t),
    },
    format: 'TabSeparated',
  });
  return parseTsv(await rs.text()).map(([callId, target, s, e, dur, cls, bsec, units, late]) => ({
    callId: callId!, targetNumber: target!, startedAt: new Date(Number(s)).toISOString(), endedAt: new Date(Number(e)).toISOString(),
    durationMs: Number(dur), callClass: cls!, billableSeconds: Number(bsec), chargeUnits: Number(units), late: late === '1',
  }));
}
