/**
 * Usage and rating, as SQL in ClickHouse. The run stages its work list (one
 * row per due subscriber period in `billing_stage_items`, naming its due
 * period in `billing_stage_periods`, which the subscribers who are due
 * together share), then one query per chunk joins it with `calls`, rates in
 * the engine (each call's duration rounded up to its class increment,
 * multiplied by the rate of the tariff version in force at the call's start,
 * summed per line, rounded once, half up, to the cent) and renders each
 * period's bill as a tuple of PostgreSQL's binary COPY format. No individual
 * call, and no bill as an object, travels to Node.
 *
 * Calls are read with FINAL over narrow ranges: a call stored twice (two
 * racing ingest replicas) counts once, its first stored copy winning, before
 * any merge.
 */
import { CALL_CLASS_CODES } from '../../../core/clickhouse/call-classes.ts';
import { insertTabSeparated, queryBytes, type ClickHouse } from '../../../core/clickhouse/client.ts';
import type { RenderedBills } from '../postgres/billing-runs.ts';

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
  /** Per plan, per version: the monthly service line's description and amount (cents). */
  monthly: { description: string; cents: number }[][];
  /** Per plan: the bills' currency. */
  currencies: string[];
}

/**
 * A due period of a group of subscribers (same subscription date, zone, plan
 * and cursor share every due period): staged once per chunk, named by the
 * items of each of its subscribers.
 */
export interface StagedPeriod {
  /** The run's number for it (unique within the run). */
  periodNo: number;
  /** 1-based index into TariffArrays' plans. */
  planNo: number;
  periodStartMs: number;
  periodEndMs: number;
  /** Previous bill's watermark; 0 when the bill has no late usage to look for. */
  lateAfterMs: number;
  /** Start of the subscribers' first period: nothing before it is theirs. */
  firstStartMs: number;
  periodIndex: number;
  periodStartLocal: string;
  periodEndLocal: string;
  /** The end of the period after it: where its bills' subscribers' cursors go (bills.next_period_end). */
  nextPeriodEndMs: number;
}

/** A due (subscriber, period): one bill. */
export interface UsageItem {
  itemNo: number;
  sourceNumber: string;
  /** Its StagedPeriod's periodNo. */
  periodNo: number;
  /** Which of the run's writer transactions stores the bill (0 or 1). */
  writer: number;
  /** The bill's subscriber: not staged, written into the bill's row by renderBills. */
  subscriberId: string;
}

/** Late calls, summed per 30-minute bucket of their start (every local midnight in North America falls on one). */
export interface LateRow { itemNo: number; callClass: string; bucketStartMs: number; calls: number; billableSeconds: number; milliCentMinutes: bigint }

const dt = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');

const ITEM_COLUMNS = ['run_id', 'item_no', 'source_number', 'plan_no', 'period_start_ms', 'period_end_ms', 'late_after_ms', 'first_start_ms', 'period_no', 'writer'] as const;
const PERIOD_COLUMNS = ['run_id', 'period_no', 'plan_no', 'period_start_ms', 'period_index', 'period_start_local', 'period_end_local', 'next_period_end_ms'] as const;

/** TabSeparated rows written straight into a Buffer (a chunk's rows held as strings lived long enough to be promoted). */
function tsvOf<T>(rows: readonly T[], bytesPerRow: number, line: (row: T) => string): Buffer {
  let buf = Buffer.allocUnsafe(bytesPerRow * Math.max(1, rows.length));
  let len = 0;
  for (const row of rows) {
    const l = line(row);
    if (buf.length - len < l.length) { const next = Buffer.allocUnsafe(buf.length * 2 + l.length); buf.copy(next, 0, 0, len); buf = next; }
    // Every staged text is ASCII (numbers, digits, dates): one byte per character.
    len += buf.write(l, len, 'latin1');
  }
  return buf.subarray(0, len);
}

/**
 * Stages a chunk's due periods and items, both at once (the rating waits for
 * both). The engine parses each insert on one thread, so what staging costs
 * is its bytes: an item is its number, its caller's number, its period's
 * number and its writer.
 */
export async function stageItems(ch: ClickHouse, stageId: string, items: readonly UsageItem[], periods: readonly StagedPeriod[]): Promise<void> {
  const byNo = new Map(periods.map((p) => [p.periodNo, p]));
  const periodRows = tsvOf(periods, 96, (p) =>
    `${stageId}\t${p.periodNo}\t${p.planNo}\t${p.periodStartMs}\t${p.periodIndex}\t${p.periodStartLocal}\t${p.periodEndLocal}\t${p.nextPeriodEndMs}\n`);
  const itemRows = tsvOf(items, 96, (it) => {
    const p = byNo.get(it.periodNo);
    if (!p) throw new Error(`staging: item ${it.itemNo} names period ${it.periodNo}, which is not staged with it`);
    // The first period's start is read with late usage only.
    return `${stageId}\t${it.itemNo}\t${it.sourceNumber}\t${p.planNo}\t${p.periodStartMs}\t${p.periodEndMs}\t${p.lateAfterMs}\t${p.lateAfterMs > 0 ? p.firstStartMs : 0}\t${it.periodNo}\t${it.writer}\n`;
  });
  // Both settle before staging fails or returns.
  const settled = await Promise.allSettled([
    insertTabSeparated(ch, 'billing_stage_periods', PERIOD_COLUMNS, periodRows),
    insertTabSeparated(ch, 'billing_stage_items', ITEM_COLUMNS, itemRows),
  ]);
  for (const r of settled) if (r.status === 'rejected') throw r.reason;
}

/** A period's late usage as its bill shows it: the amount, and the lines as JSON (each preceded by a comma). */
export interface LateLines { itemNo: number; cents: number; linesJson: string }

/** Stages the late-usage lines of a chunk's periods that have any, for renderBills to join in. */
export async function stageLate(ch: ClickHouse, runId: string, late: LateLines[]): Promise<void> {
  if (!late.length) return;
  await ch.client.insert({
    table: ch.table('billing_period_late'), format: 'JSONEachRow',
    // JSON text, as it is: renderBills splices it into the bill's lines, which go into PostgreSQL by binary COPY.
    values: late.map((l) => ({ run_id: runId, item_no: l.itemNo, late_cents: l.cents, late_lines: l.linesJson })),
  });
}

export async function dropItems(ch: ClickHouse, runId: string): Promise<void> {
  for (const table of ['billing_stage_items', 'billing_stage_periods', 'billing_period_late']) {
    await ch.client.command({ query: `ALTER TABLE ${ch.table(table)} DROP PARTITION {run:String}`, query_params: { run: runId } });
  }
}

const maxVersionsOf = (t: TariffArrays) => Math.max(...t.versionFrom.map((v) => v.length));

/**
 * The per-call rating expressions, shared by the usage, late and itemized
 * queries (c = calls, i = items). The class is read as its Enum8 code
 * (core/clickhouse/call-classes.ts). Every tariff lookup is a transform() over
 * constant arrays (a hash lookup per call): indexing a constant array with a
 * per-call position copied the array into every row (measured on 30M calls:
 * ~0.3-0.5 s of CPU more). The version in force at the call's start is
 * counted with one comparison per version slot of the plan, not an
 * arrayCount lambda (that built a per-row array: ~0.5-0.8 s of CPU).
 */
export const ratedColumns = (t: TariffArrays) => `
  transform(toUInt8(c.call_class), {classCodes:Array(UInt8)}, {classNos:Array(UInt8)}, toUInt8(0)) AS class_no,
  ${Array.from({ length: maxVersionsOf(t) }, (_, k) => `(transform(i.plan_no, {planNos:Array(UInt16)}, {versionStartMs${k}:Array(Int64)}, toInt64(${NEVER_MS})) <= toUnixTimestamp64Milli(c.started_at))`).join(' + ')} AS version_no,
  -- Unrated calls (class or version 0) fall outside the slots: rate and increment 0, and the query fails on them.
  toUInt32(if(class_no = 0 OR version_no = 0, 0, ((i.plan_no - 1) * {maxVersions:UInt32} + version_no - 1) * {classCount:UInt32} + class_no)) AS rate_slot,
  transform(rate_slot, {slots:Array(UInt32)}, {incsFlat:Array(UInt32)}, toUInt32(0)) AS inc,
  transform(rate_slot, {slots:Array(UInt32)}, {ratesFlat:Array(UInt64)}, toUInt64(0)) AS rate,
  if(inc = 0, 0, intDiv(c.duration_ms + inc * 1000 - 1, inc * 1000) * inc) AS bsec,
  class_no = 0 OR version_no = 0 AS unrated`;

/** After any call: the start of a version slot a plan does not have. */
const NEVER_MS = 9_000_000_000_000_000;

/**
 * The tariff as query parameters: rates and increments flattened to one list
 * by (plan, version, class) slot, so each call costs one lookup of each.
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
  // Version starts by version slot, one list per slot, by plan; a slot past a plan's last version starts after any call.
  const versionStarts = Object.fromEntries(Array.from({ length: maxVersions }, (_, k) =>
    [`versionStartMs${k}`, t.versionFrom.map((v) => (k < v.length ? v[k]! : NEVER_MS))]));
  return {
    // A class the calls table has no code for is never matched: its calls would be unrated.
    classCodes: t.classes.map((c) => (CALL_CLASS_CODES as Record<string, number>)[c] ?? 0),
    classNos: t.classes.map((_, i) => i + 1),
    planNos: t.versionFrom.map((_, i) => i + 1),
    vfrom: t.versionFrom.map((v) => v.map(dt)),
    ...versionStarts,
    slots: ratesFlat.map((_, i) => i + 1),
    maxVersions, classCount, ratesFlat, incsFlat,
  };
};

/**
 * Texts for the SQL that renders bill rows, as JSON (the lines go into
 * PostgreSQL as the engine wrote them): kinds, descriptions by (plan, version,
 * class) slot, and by (plan, version) slot the monthly line and its amount;
 * currencies by plan.
 */
const billTextParams = (t: TariffArrays) => {
  const maxVersions = maxVersionsOf(t);
  // Per class: by (plan, version) slot, the line's text up to its call count.
  const linePrefixes: string[][] = t.classes.map(() => []);
  const monthlyJson: string[] = [];
  const monthlyCents: number[] = [];
  t.descriptions.forEach((plan, p) => {
    for (let v = 0; v < maxVersions; v++) {
      t.classes.forEach((c, k) => {
        linePrefixes[k]!.push(`,{"kind":${JSON.stringify(c)},"description":${JSON.stringify(plan[v]?.[k] ?? c)},"calls":`);
      });
      const m = t.monthly[p]![v] ?? t.monthly[p]![0]!;
      monthlyJson.push(JSON.stringify({ kind: 'monthly_service', description: m.description, calls: 0, billableSeconds: 0, amountCents: m.cents }));
      monthlyCents.push(m.cents);
    }
  });
  return {
    versionSlots: monthlyJson.map((_, i) => i + 1),
    ...Object.fromEntries(linePrefixes.map((l, k) => [`linePrefix${k}`, l])),
    monthlyJson, monthlyCents, currencies: t.currencies,
  };
};

const SETTINGS = `do_not_merge_across_partitions_select_final = 1`;

function parseTsv(text: string): string[][] {
  const out: string[][] = [];
  for (const line of text.split('\n')) if (line) out.push(line.split('\t'));
  return out;
}

/** throwIf's message in the rendering query: a bill is never written with a call rated at zero. */
const UNRATED = 'phonebill: calls the tariff cannot rate';

function assertRated(unrated: string | undefined, callClass: string | undefined): void {
  if (Number(unrated) > 0) {
    throw new Error(`${unrated} call(s) of class '${callClass}' cannot be rated by the tariff (unknown class, or a start before the plan's first version)`);
  }
}

/**
 * A chunk of up to this many periods (a day's cohort) is narrow: it filters
 * calls by `PREWHERE source_digits IN` the chunk's callers, before FINAL, so
 * FINAL merges only their rows (safe: copies of a call share the whole sorting
 * key, so all or none pass). Measured on 30M calls and a scattered
 * 9,678-subscriber cohort: ~0.65 s against ~0.95 s without the set, and the
 * read ~0.35 s against ~0.6 s with the set on the text. A catch-up's
 * subscribers cover nearly every row, where the set only costs (+4.7 s at
 * 300,000 periods); the join alone selects their calls.
 */
export const NARROW_CHUNK = 50_000;

/**
 * The calls of a chunk's callers, with `columns`. A narrow chunk (a day's cohort) has callers
 * scattered over every granule: its calls are picked by their callers' numbers as integers
 * (source_digits, read ~10x cheaper than the text; a condition on the text, even the chunk's range,
 * reads the text), before FINAL, and joined on them. A wide chunk reads its range of callers (the
 * primary key skips the rest) and is joined on the text. Either way `caller` is the join key.
 */
const chunkCallsSql = (ch: ClickHouse, narrow: boolean, columns: string, where: string, itemsWhere = '') => narrow
  ? `SELECT source_digits AS caller, ${columns} FROM ${ch.table('calls')} FINAL
            PREWHERE source_digits IN (SELECT ${DIGITS} FROM ${ch.table('billing_stage_items')} WHERE run_id = {run:String}${itemsWhere})
            WHERE ${where}`
  : `SELECT source_number AS caller, ${columns} FROM ${ch.table('calls')} FINAL
            WHERE source_number >= {srcLo:String} AND source_number <= {srcHi:String} AND ${where}`;

/** A staged item's caller as the join key chunkCallsSql gives its calls. */
const itemCaller = (narrow: boolean) => (narrow ? `${DIGITS} AS caller` : 'source_number AS caller');

/** A number's digits after '+' as an integer, as calls.source_digits holds them. */
const DIGITS = 'toUInt64OrZero(substring(source_number, 2))';

/** Each character code's value as a hex digit, or -1 (codes past 255 are read masked, and checked apart). */
const HEX_VALUE = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX_VALUE[48 + i] = i;
for (let i = 0; i < 6; i++) HEX_VALUE[65 + i] = HEX_VALUE[97 + i] = 10 + i;
/** A hex digit's value (its character code given), or -1. */
const hexValue = (c: number) => (c > 255 ? -1 : HEX_VALUE[c]!);

/** Bounds of a chunk: its periods' instants (ms, half-open) and its callers' numbers (inclusive). */
export interface TimeBounds { lo: number; hi: number }
export interface SourceBounds { lo: string; hi: string }

/**
 * Which of a run's two writer transactions takes a subscriber's bills and
 * cursor: the parity of the last hex digit of its id (staged with each item;
 * each rendered row is checked to be the item its writer expects).
 */
export const writerOf = (subscriberId: string) => hexValue(subscriberId.charCodeAt(subscriberId.length - 1)) & 1;

/** The columns of the bill rows renderBills writes, in their order. */
export const RENDERED_BILL_COLUMNS = ['id', 'subscriber_id', 'period_index', 'period_start', 'period_end', 'period_start_local', 'period_end_local',
  'currency', 'total_cents', 'lines', 'issued_at', 'due_at', 'watermark', 'run_id', 'next_period_end'] as const;

/** What every bill of a run shares: the run, its instants (ms since 1970). */
export interface RunBillFields { runId: string; issuedAtMs: number; dueAtMs: number; watermarkMs: number }

/*
 * PostgreSQL's binary COPY format (https://www.postgresql.org/docs/current/sql-copy.html): a tuple
 * is its field count (int16), then per field its length (int32) and its bytes, integers
 * big-endian. Parsing this is cheaper for the server than COPY text: no timestamp, date, uuid or
 * integer to read from text (measured: a bare COPY of 300,000 bills, 4.0 -> 2.5 s of server CPU).
 */
/** An integer's big-endian bytes. */
const be32 = (x: string) => `reverse(reinterpretAsFixedString(toInt32(${x})))`;
const be64 = (x: string) => `reverse(reinterpretAsFixedString(toInt64(${x})))`;
/** A field of a fixed width n (< 256 bytes). */
const fixedField = (n: number, bytes: string) => `char(0, 0, 0, ${n}), ${bytes}`;
/** A field of variable width: the expression named, so that it is worked out once for its length and its bytes. */
const varField = (expr: string, name: string) => `${be32(`length((${expr}) AS ${name})`)}, ${name}`;
/** timestamptz: microseconds since 2000-01-01 UTC, from milliseconds since 1970. */
const instantField = (ms: string) => fixedField(8, be64(`(${ms} - ${Date.UTC(2000, 0, 1)}) * 1000`));
/** date: days since 2000-01-01, from 'YYYY-MM-DD' (10957 days after 1970-01-01). */
const dateField = (ymd: string) => fixedField(4, be32(`toInt32(toDate32(${ymd})) - 10957`));
/** The fixed-width fields at a tuple's start: field count, id, subscriber id, period index, two instants, two dates. */
const TUPLE_HEAD = 2 + (4 + 16) * 2 + (4 + 4) + (4 + 8) * 2 + (4 + 4) * 2;
/** The fixed-width fields at a tuple's end: issued, due, watermark (instants), the run id, the next period's end. */
const TUPLE_TAIL = (4 + 8) * 3 + (4 + 16) + (4 + 8);
/** Offset in a tuple of its subscriber's id (the second field's bytes). */
const SUBSCRIBER_ID = 2 + (4 + 16) + 4;

/**
 * The calls of each staged period, joined with it and rated: the calls that
 * started inside the period and were ingested at or before the watermark.
 */
const ratedCallsSql = (ch: ClickHouse, t: TariffArrays, narrow: boolean) => `
          SELECT i.item_no AS item_no, c.call_class AS call_class, ${ratedColumns(t)}
          FROM (
            ${chunkCallsSql(ch, narrow, 'call_class, started_at, duration_ms', `started_at >= {lo:DateTime64(3, 'UTC')} AND started_at < {hi:DateTime64(3, 'UTC')}
              AND ingested_at <= {w:DateTime64(3, 'UTC')}`)}
          ) AS c
          INNER JOIN (
            SELECT item_no, ${itemCaller(narrow)}, plan_no, period_start, period_end FROM ${ch.table('billing_stage_items')} WHERE run_id = {run:String}
          ) AS i ON c.caller = i.caller
          WHERE c.started_at >= i.period_start AND c.started_at < i.period_end`;

/**
 * The (plan, version) slot of a staged period: the tariff version in force at
 * the period's start (the first version, before any) gives its line
 * descriptions and monthly line.
 */
const VERSION_SLOT = `toUInt32((plan_no - 1) * {maxVersions:UInt32} + greatest(arrayCount(x -> x <= period_start, {vfrom:Array(Array(DateTime64(3, 'UTC')))}[plan_no]), 1))`;

/**
 * Rates every staged period of a chunk and renders its bill as a tuple of
 * PostgreSQL's binary COPY format: the regular usage (calls that started inside the
 * period, ingested at or before the watermark) rated per call, summed per
 * class, each class line rounded once; the monthly line of the tariff version
 * in force at the period's start; the late lines staged by stageLate; a new
 * UUIDv7 id. One row per staged period, with calls or without, in no
 * particular order (billsByWriter sorts them out): sorted in the engine, the
 * rows were rendered after the sort, on one thread, while the other core
 * waited (~0.25 s of a 100,000-bill chunk's ~1.5 s). Node splices nothing:
 * measured on 300,000 bills, building each bill and its COPY line in Node cost
 * ~4 s of CPU and ~2 s of garbage collection. The lines are JSON text in the
 * tuple, which PostgreSQL checks on the way in. Fails loudly on a call the
 * tariff cannot rate rather than billing it at zero.
 */
export async function renderBills(ch: ClickHouse, runId: string, t: TariffArrays, run: RunBillFields, time: TimeBounds,
  sources: SourceBounds, withLate: boolean, narrow: boolean): Promise<Buffer> {
  // The bills' watermark is also the rated calls' bound: calls ingested at or before it.
  const params = { run: runId, w: dt(run.watermarkMs), lo: dt(time.lo), hi: dt(time.hi), srcLo: sources.lo, srcHi: sources.hi, ...tariffParams(t) };
  try {
    return await queryBytes(ch, `
      SELECT concat(char(0, ${RENDERED_BILL_COLUMNS.length}),
                    ${fixedField(16, 'UUIDToNum(generateUUIDv7())')},
                    -- The subscriber's id is the run's to write: here, the item's number, then zeros.
                    ${fixedField(16, `concat(${be32('item_no')}, toFixedString('', 12))`)},
                    ${fixedField(4, be32('period_index'))},
                    ${instantField('period_start_ms')}, ${instantField('period_end_ms')},
                    ${dateField('period_start_local')}, ${dateField('period_end_local')},
                    ${varField(`transform(plan_no, {planNos:Array(UInt16)}, {currencies:Array(String)}, '')`, 'currency')},
                    ${fixedField(8, be64(`transform(slot, {versionSlots:Array(UInt32)}, {monthlyCents:Array(Int64)}, toInt64(0)) + toInt64(arraySum(amounts))${withLate ? ' + late_cents' : ''}`))},
                    ${varField(`concat('[', transform(slot, {versionSlots:Array(UInt32)}, {monthlyJson:Array(String)}, ''),
                    -- One line per class with calls, in the tariff's order, as BillLineDoc serializes:
                    -- {kind, description, calls, billableSeconds, amountCents}; kind and description by the period's version slot.
                    ${t.classes.map((_, k) => `if(calls[${k + 1}] = 0, '', concat(transform(slot, {versionSlots:Array(UInt32)}, {linePrefix${k}:Array(String)}, ''),
                      toString(calls[${k + 1}]), ',"billableSeconds":', toString(seconds[${k + 1}]), ',"amountCents":', toString(amounts[${k + 1}]), '}')),`).join('\n                    ')}
                    ${withLate ? 'late_lines, ' : ''}']')`, 'lines_json')},
                    ${instantField('{issuedMs:Int64}')}, ${instantField('{dueMs:Int64}')}, ${instantField('{watermarkMs:Int64}')},
                    ${fixedField(16, 'UUIDStringToNum({runId:String})')},
                    ${instantField('next_period_end_ms')})
      FROM (
        SELECT ${['item_no', 'period_start_ms', 'period_end_ms', 'plan_no', 'period_index', 'period_start_local', 'period_end_local', 'next_period_end_ms', 'slot'].map((c) => `i.${c} AS ${c}`).join(', ')},
               u.calls AS calls, u.seconds AS seconds, u.amounts AS amounts${withLate ? ', l.late_cents AS late_cents, l.late_lines AS late_lines' : ''}
        FROM (
          -- The items with their due periods' fields (worked out once per period), as a subquery of its
          -- own: joined beside the usage below, the engine reordered the joins (20-30 % more time).
          SELECT m.item_no AS item_no, m.writer AS writer, m.period_start_ms AS period_start_ms, m.period_end_ms AS period_end_ms, m.plan_no AS plan_no,
                 p.period_index AS period_index, p.period_start_local AS period_start_local, p.period_end_local AS period_end_local,
                 p.next_period_end_ms AS next_period_end_ms, p.slot AS slot
          FROM (
            SELECT item_no, writer, period_start_ms, period_end_ms, plan_no, period_no FROM ${ch.table('billing_stage_items')} WHERE run_id = {run:String}
          ) AS m
          INNER JOIN (
            SELECT period_no, period_index, period_start_local, period_end_local, next_period_end_ms, ${VERSION_SLOT} AS slot
            FROM ${ch.table('billing_stage_periods')} WHERE run_id = {run:String}
          ) AS p ON p.period_no = m.period_no
        ) AS i
        LEFT JOIN (
          -- One group per period, its classes in arrays (class_no 1..n): a group per (period, class) and a
          -- second aggregation to gather them cost ~0.5 s more CPU on 30M calls. A period without calls
          -- finds no row here: empty arrays, no usage lines.
          SELECT item_no,
                 countResample(1, {classCount:UInt32} + 1, 1)(class_no) AS calls,
                 sumResample(1, {classCount:UInt32} + 1, 1)(bsec, class_no) AS seconds,
                 -- Never a bill with a call rated at zero: the query fails instead (the caller says which calls).
                 arrayMap(x -> intDiv(x + 30000, 60000) + throwIf(countIf(unrated) > 0, '${UNRATED}'),
                          sumResample(1, {classCount:UInt32} + 1, 1)(bsec * rate, class_no)) AS amounts
          FROM (${ratedCallsSql(ch, t, narrow)})
          GROUP BY item_no
        ) AS u ON u.item_no = i.item_no
        ${withLate ? `LEFT JOIN (SELECT item_no, late_cents, late_lines FROM ${ch.table('billing_period_late')} WHERE run_id = {run:String}) AS l ON l.item_no = i.item_no` : ''}
      )
      SETTINGS ${SETTINGS}, join_use_nulls = 0`,
      { ...params, ...billTextParams(t), issuedMs: run.issuedAtMs, dueMs: run.dueAtMs, watermarkMs: run.watermarkMs, runId: run.runId },
      // The tuples back to back, as they go into the COPY.
      'RawBLOB');
  } catch (e) {
    if (!String((e as Error)?.message).includes(UNRATED)) throw e;
    // Which calls: the same join, counted.
    const rs = await ch.client.query({
      query: `SELECT countIf(unrated) AS n, anyIf(call_class, unrated) AS cls FROM (${ratedCallsSql(ch, t, narrow)}) SETTINGS ${SETTINGS}`,
      query_params: params, format: 'TabSeparated',
    });
    const [[n, cls]] = parseTsv(await rs.text()) as [[string, string]];
    assertRated(n, cls);
    throw e;
  }
}

/**
 * A chunk's rendered bills (renderBills) as one block of tuples per writer. Each tuple is walked
 * (its two variable-width fields give its length), looked up by the item number the engine wrote
 * in its subscriber field, and given that item's subscriber; every staged item must come exactly
 * once, and goes to the tuples of the writer it was staged for (a subscriber's bills, and so its
 * cursor's move, commit in the same transaction), as spans of the result. Within a writer's the
 * tuples keep the engine's order.
 */
export function billsByWriter(data: Buffer, writers: readonly (readonly UsageItem[])[]): RenderedBills[] {
  // A chunk's item numbers are consecutive: an item's place is its number less the first.
  let first = Infinity, count = 0;
  for (const items of writers) for (const item of items) { if (item.itemNo < first) first = item.itemNo; count++; }
  const byPlace = new Array<UsageItem | undefined>(count);
  const writerAt = new Uint8Array(count);
  for (const [w, items] of writers.entries()) {
    for (const item of items) {
      const k = item.itemNo - first;
      if (k >= count || byPlace[k]) throw new Error(`rating query: the chunk's item numbers are not ${count} consecutive numbers (item ${item.itemNo})`);
      byPlace[k] = item;
      writerAt[k] = w;
    }
  }
  // Each writer's tuples as (start, end) pairs into the result.
  const spans = writers.map(() => [] as number[]);
  let rows = 0;
  // Big-endian integers read byte by byte (Buffer's readInt32BE and kin, a call each with its own
  // checks, were a third of this walk); every read is within the bounds checked before it.
  const i32 = (at: number) => (data[at]! << 24) | (data[at + 1]! << 16) | (data[at + 2]! << 8) | data[at + 3]!;
  const cutShort = () => new Error(`rating query: a bill row cut short (${count} periods staged)`);
  const FIELDS = RENDERED_BILL_COLUMNS.length;
  for (let start = 0; start < data.length;) {
    if (start + TUPLE_HEAD + 4 > data.length) throw cutShort();
    if (((data[start]! << 8) | data[start + 1]!) !== FIELDS || i32(start + SUBSCRIBER_ID - 4) !== 16) throw new Error('rating query: a bill row not in the binary COPY layout');
    const itemNo = i32(start + SUBSCRIBER_ID) >>> 0;
    const k = itemNo - first;
    const item = k >= 0 && k < count ? byPlace[k] : undefined;
    if (!item) throw new Error(`rating query: a bill row of item ${itemNo}, which is not staged in this chunk or came twice`);
    byPlace[k] = undefined;
    writeUuid(data, start + SUBSCRIBER_ID, item.subscriberId);
    let at = start + TUPLE_HEAD;
    at += 4 + i32(at); // currency (its length is within TUPLE_HEAD + 4, checked above)
    at += 4 + 8; // total
    if (at + 4 > data.length) throw cutShort();
    at += 4 + i32(at); // lines
    const end = at + TUPLE_TAIL;
    if (!(end <= data.length && end > start)) throw cutShort();
    const w = writerAt[k]!;
    spans[w]!.push(start, end);
    rows++;
    start = end;
  }
  if (rows !== count) throw new Error(`rating query: ${rows} bill rows for the ${count} periods staged`);
  // Picked out of the result as the COPY sends them (copying ~46 MB per writer into a Buffer of its
  // own was most of this function's time, in page faults).
  return spans.map((pairs) => ({ columns: RENDERED_BILL_COLUMNS, tuples: { data, spans: pairs }, rows: pairs.length / 2 }));
}

/** Where each of a UUID's 16 bytes starts in its text (8-4-4-4-12 hex digits). */
const UUID_BYTE_AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/** Writes a UUID given as text (8-4-4-4-12 hex digits) as its 16 bytes at `at`. */
export function writeUuid(buf: Buffer, at: number, uuid: string): void {
  if (uuid.length !== 36 || uuid.charCodeAt(8) !== 45 || uuid.charCodeAt(13) !== 45 || uuid.charCodeAt(18) !== 45 || uuid.charCodeAt(23) !== 45) {
    throw new TypeError(`not a UUID: ${JSON.stringify(uuid)}`);
  }
  // Once per bill (300,000 in a catch-up): a table lookup per digit, one check at the end.
  let bad = 0;
  for (let k = 0; k < 16; k++) {
    const i = UUID_BYTE_AT[k]!;
    const c = uuid.charCodeAt(i), d = uuid.charCodeAt(i + 1);
    const hi = HEX_VALUE[c & 255]!, lo = HEX_VALUE[d & 255]!;
    bad |= hi | lo | (255 - c) | (255 - d);
    buf[at + k] = (hi << 4) | lo;
  }
  if (bad < 0) throw new TypeError(`not a UUID: ${JSON.stringify(uuid)}`);
}

/**
 * Late usage: calls of a subscriber's earlier periods ingested after the
 * previous bill's watermark and at or before this one. Summed per 30-minute
 * bucket of the call's start so the caller can attribute each sum to the
 * period it belongs to (every North American local midnight is on a
 * half-hour UTC boundary). Old granules are skipped by the ingested_at index.
 */
export async function lateUsage(ch: ClickHouse, runId: string, t: TariffArrays, watermarkMs: number, time: TimeBounds, sources: SourceBounds, minLateAfterMs: number, narrow: boolean): Promise<LateRow[]> {
  const rs = await ch.client.query({
    query: `
      SELECT item_no, call_class, bucket_ms, count() AS calls, sum(bsec) AS billable_seconds,
             sum(bsec * rate) AS milli_cent_minutes, countIf(unrated) AS unrated_calls
      FROM (
        -- In milliseconds, not toStartOfInterval: that returns a DateTime (seconds) for a DateTime64 on some engine versions.
        SELECT i.item_no AS item_no, c.call_class AS call_class, intDiv(toUnixTimestamp64Milli(c.started_at), 1800000) * 1800000 AS bucket_ms, ${ratedColumns(t)}
        FROM (
          ${chunkCallsSql(ch, narrow, 'call_class, started_at, duration_ms, ingested_at', `started_at >= {lo:DateTime64(3, 'UTC')} AND started_at < {hi:DateTime64(3, 'UTC')}
            AND ingested_at > {minAfter:DateTime64(3, 'UTC')} AND ingested_at <= {w:DateTime64(3, 'UTC')}`, ' AND late_after_ms > 0')}
        ) AS c
        INNER JOIN (SELECT item_no, ${itemCaller(narrow)}, plan_no, period_start, late_after, first_start FROM ${ch.table('billing_stage_items')}
                    WHERE run_id = {run:String} AND late_after_ms > 0) AS i
          ON c.caller = i.caller
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
