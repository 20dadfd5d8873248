/**
 * The REFERENCE rater: the expected bill of one subscriber for one period,
 * computed in plain TypeScript over arrays of calls. It exists to be compared
 * with the ClickHouse path, so it shares nothing with it but the tariff file:
 * its own classification (libphonenumber-js/max directly, not core/numbers),
 * its own period arithmetic (luxon calendar math, not cycles.ts), its own
 * tariff-version lookup and its own BigInt rounding. Slow and obvious on
 * purpose; never used to issue bills.
 *
 * Rules it encodes:
 * - dedup by callId over all copies: the copy ingested first wins (equal
 *   ingest times: the first in input order; a resend is expected to carry
 *   the same fields);
 * - a call is billed to its SOURCE number's subscriber, in the period in
 *   which it STARTS; incoming calls cost the callee nothing;
 * - a call is visible to a bill when its (first) ingestedAtMs <= the bill's
 *   watermarkMs. Bill m shows (a) its own period's visible calls, one line
 *   per class with calls, and (b) calls of earlier periods ingested in
 *   (previous bill's watermark, this bill's watermark]: they arrived after
 *   the bill of their period, so they appear once, here, on one `late_usage`
 *   line per original period (all classes together, rounded once);
 * - tariff version by the call's start; the monthly line and the line
 *   descriptions use the version in effect at the period's start.
 *
 * Lines, in this order: `monthly_service`; then `domestic`, `cross_border`,
 * `nanp_international`, `premium`, `toll_free`, `service_code` (only those
 * with calls, free ones included); then `late_usage` lines, oldest period
 * first, described "Late usage for period <startLocal> to <endLocal>".
 */
import { DateTime } from 'luxon';
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { invalid } from '../../core/errors.ts';
import type { LocalDate, Period } from './cycles.ts';
import type { CallClass, Plan, Tariff, TariffVersion } from './tariff.ts';

export interface RaterCall {
  readonly callId: string;
  readonly source: string;
  readonly target: string;
  readonly startMs: number;
  readonly endMs: number;
  readonly ingestedAtMs: number;
}

export interface RaterSubscriber {
  readonly id: string;
  readonly phoneNumber: string;
  readonly subscriptionDate: LocalDate;
  readonly timeZone: string;
  readonly plan: string;
}

export type LineKind = 'monthly_service' | CallClass | 'late_usage';

export interface ExpectedLine {
  readonly kind: LineKind;
  readonly description: string;
  readonly calls: number;
  /** Sum of the calls' billable seconds (exact). */
  readonly billableSeconds: number;
  /** billableSeconds / 60 rounded up: what the bill shows. */
  readonly minutes: number;
  readonly amountCents: number;
  /** late_usage only: the period the calls belong to. */
  readonly lateFor?: Period;
  /** late_usage only, when some of its calls were pay-per-call (900): that share, which never blocks. */
  readonly premiumCents?: number;
}

export interface ExpectedBill {
  readonly subscriberId: string;
  readonly period: Period;
  readonly currency: string;
  readonly watermarkMs: number;
  readonly lines: readonly ExpectedLine[];
  readonly totalCents: number;
}

export interface ReferenceBillInput {
  readonly tariff: Tariff;
  readonly subscriber: RaterSubscriber;
  /** Every call known, any source, any ingest time, duplicates included. */
  readonly calls: readonly RaterCall[];
  readonly periodIndex: number;
  /** Calls ingested at or before this instant are visible to the bill. */
  readonly watermarkMs: number;
  /** The previous bill's watermark; null for the subscriber's first bill (no late usage). */
  readonly previousWatermarkMs: number | null;
}

const CLASS_ORDER: readonly CallClass[] = ['domestic', 'cross_border', 'nanp_international', 'premium', 'toll_free', 'service_code'];
const SERVICE_CODES = new Set(['211', '311', '411', '511', '611', '711', '811', '911', '988']);
const TOLL_FREE_NPAS = new Set(['800', '833', '844', '855', '866', '877', '888']);
const PREMIUM_NPA = '900';
const COUNTS_AS_US = new Set(['US', 'PR', 'VI', 'GU', 'MP', 'AS']);
const E164_NANP = /^\+1\d{10}$/;

export const lateUsageDescription = (p: Pick<Period, 'startLocal' | 'endLocal'>) => `Late usage for period ${p.startLocal} to ${p.endLocal}`;

const countryCache = new Map<string, string>();
function nanpCountry(number: string, field: string): string {
  let c = countryCache.get(number);
  if (c === undefined) {
    const parsed = E164_NANP.test(number) ? parsePhoneNumberFromString(number) : undefined;
    if (!parsed?.country) throw invalid(field, `not a NANP number in E.164 (+1NPANXXXXXX): ${JSON.stringify(number)}`);
    c = COUNTS_AS_US.has(parsed.country) ? 'US' : parsed.country;
    countryCache.set(number, c);
  }
  return c;
}

/** The call class, from the numbers alone. */
export function referenceClassify(source: string, target: string): CallClass {
  if (SERVICE_CODES.has(target)) return 'service_code';
  const targetCountry = nanpCountry(target, 'target');
  const npa = target.slice(2, 5);
  if (TOLL_FREE_NPAS.has(npa)) return 'toll_free';
  if (npa === PREMIUM_NPA) return 'premium';
  const sourceCountry = nanpCountry(source, 'source');
  if (sourceCountry === targetCountry) return 'domestic';
  if ((sourceCountry === 'US' || sourceCountry === 'CA') && (targetCountry === 'US' || targetCountry === 'CA')) return 'cross_border';
  return 'nanp_international';
}

/** One copy per callId: the first ingested (ties: first in input order). */
export function dedupeCalls(calls: readonly RaterCall[]): RaterCall[] {
  const first = new Map<string, RaterCall>();
  for (const c of calls) {
    const seen = first.get(c.callId);
    if (!seen || c.ingestedAtMs < seen.ingestedAtMs) first.set(c.callId, c);
  }
  return [...first.values()];
}

/** The earliest instant at which the zone's wall clock reads y-m-d 00:00 (after a gap: luxon's forward shift). */
function localMidnight(y: number, m: number, d: number, zone: string): number {
  const c = DateTime.fromObject({ year: y, month: m, day: d }, { zone }).toMillis();
  let best = c;
  for (const backMinutes of [30, 60, 120]) {
    const e = DateTime.fromMillis(c - backMinutes * 60_000, { zone });
    if (e.year === y && e.month === m && e.day === d && e.hour === 0 && e.minute === 0 && e.second === 0 && e.millisecond === 0) best = Math.min(best, e.toMillis());
  }
  return best;
}

/** Bill dates 0..last+1 and their local midnights, by luxon's month arithmetic (which clamps to month ends from the base date). */
function periodTable(sub: RaterSubscriber, last: number): Period[] {
  const base = DateTime.fromISO(sub.subscriptionDate, { zone: 'UTC' });
  if (!base.isValid || !/^\d{4}-\d{2}-\d{2}$/.test(sub.subscriptionDate)) throw invalid('subscriptionDate', `must be a date YYYY-MM-DD, got ${JSON.stringify(sub.subscriptionDate)}`);
  if (!DateTime.local({ zone: sub.timeZone }).isValid) throw invalid('timeZone', `unknown IANA time zone ${JSON.stringify(sub.timeZone)}`);
  const dates = Array.from({ length: last + 2 }, (_, k) => base.plus({ months: k }));
  const starts = dates.map((d) => localMidnight(d.year, d.month, d.day, sub.timeZone));
  return dates.slice(0, -1).map((d, k) => ({
    index: k,
    startMs: starts[k]!,
    endMs: starts[k + 1]!,
    startLocal: d.toISODate()!,
    endLocal: dates[k + 1]!.toISODate()!,
  }));
}

function versionAt(plan: Plan, at: number, field: string): TariffVersion {
  const v = [...plan.versions].reverse().find((x) => x.effectiveFromMs <= at);
  if (!v) throw invalid(field, `no version of plan ${plan.id} is in effect at ${new Date(at).toISOString()}`);
  return v;
}

interface Acc { calls: number; seconds: bigint; units: bigint; premiumUnits: bigint }
const newAcc = (): Acc => ({ calls: 0, seconds: 0n, units: 0n, premiumUnits: 0n });
/** Half up, once, from 1/60,000 cent to cents. */
const roundCents = (units: bigint) => Number((units + 30_000n) / 60_000n);

function line(kind: LineKind, description: string, a: Acc, lateFor?: Period): ExpectedLine {
  const seconds = Number(a.seconds);
  const out = { kind, description, calls: a.calls, billableSeconds: seconds, minutes: Math.ceil(seconds / 60), amountCents: roundCents(a.units) };
  if (!lateFor) return out;
  // A late-usage line mixes classes: its pay-per-call share, rounded on its own, capped at the line.
  return a.premiumUnits > 0n ? { ...out, lateFor, premiumCents: Math.min(out.amountCents, roundCents(a.premiumUnits)) } : { ...out, lateFor };
}

/** The expected bill of `subscriber` for period `periodIndex`, as of a watermark. */
export function referenceBill(input: ReferenceBillInput): ExpectedBill {
  const { tariff, subscriber: sub, periodIndex: m, watermarkMs: w, previousWatermarkMs: prevW } = input;
  if (!Number.isInteger(m) || m < 0) throw invalid('periodIndex', `must be a non-negative integer, got ${m}`);
  if (!Object.hasOwn(tariff.plans, sub.plan)) throw invalid('plan', `unknown plan ${JSON.stringify(sub.plan)}`);
  const plan = tariff.plans[sub.plan]!;
  const periods = periodTable(sub, m);
  const period = periods[m]!;
  const head = versionAt(plan, period.startMs, 'period');

  const own = new Map<CallClass, Acc>();
  const late = new Map<number, Acc>();
  for (const c of dedupeCalls(input.calls)) {
    if (c.source !== sub.phoneNumber) continue;
    if (c.startMs < periods[0]!.startMs || c.startMs >= period.endMs) continue;
    const j = periods.findIndex((p) => c.startMs < p.endMs);
    const visible = j === m ? c.ingestedAtMs <= w : prevW !== null && c.ingestedAtMs > prevW && c.ingestedAtMs <= w;
    if (!visible) continue;
    const field = `calls[${c.callId}]`;
    if (!Number.isInteger(c.startMs) || !Number.isInteger(c.endMs) || c.endMs < c.startMs) throw invalid(`${field}.endMs`, 'must be an integer instant at or after startMs');
    const cls = referenceClassify(c.source, c.target);
    const acc = j === m ? getOr(own, cls, newAcc) : getOr(late, j, newAcc);
    const rate = versionAt(plan, c.startMs, `${field}.startMs`).classes[cls];
    const step = BigInt(rate.incrementSeconds) * 1000n;
    const seconds = ((BigInt(c.endMs - c.startMs) + step - 1n) / step) * BigInt(rate.incrementSeconds);
    acc.calls += 1;
    acc.seconds += seconds;
    acc.units += seconds * BigInt(rate.rateMilliCentsPerMinute);
    if (cls === 'premium') acc.premiumUnits += seconds * BigInt(rate.rateMilliCentsPerMinute);
  }

  const lines: ExpectedLine[] = [
    { kind: 'monthly_service', description: head.monthlyDescription, calls: 0, billableSeconds: 0, minutes: 0, amountCents: head.monthlyCents },
  ];
  for (const cls of CLASS_ORDER) {
    const a = own.get(cls);
    if (a) lines.push(line(cls, head.classes[cls].description, a));
  }
  for (const j of [...late.keys()].sort((a, b) => a - b)) lines.push(line('late_usage', lateUsageDescription(periods[j]!), late.get(j)!, periods[j]));
  return {
    subscriberId: sub.id,
    period,
    currency: plan.currency,
    watermarkMs: w,
    lines,
    totalCents: lines.reduce((s, l) => s + l.amountCents, 0),
  };
}

function getOr<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let v = map.get(key);
  if (v === undefined) map.set(key, (v = make()));
  return v;
}

/**
 * A subscriber's bill history: bills for consecutive periods, each with the
 * watermark it was computed at (non-decreasing); the first has no previous
 * bill. This is what a series of billing runs should have issued.
 */
export function referenceBills(input: {
  readonly tariff: Tariff;
  readonly subscriber: RaterSubscriber;
  readonly calls: readonly RaterCall[];
  readonly bills: readonly { readonly periodIndex: number; readonly watermarkMs: number }[];
}): ExpectedBill[] {
  const out: ExpectedBill[] = [];
  input.bills.forEach((b, i) => {
    const prev = input.bills[i - 1];
    if (prev && b.periodIndex !== prev.periodIndex + 1) throw invalid(`bills[${i}].periodIndex`, `must follow ${prev.periodIndex}, got ${b.periodIndex}`);
    if (prev && b.watermarkMs < prev.watermarkMs) throw invalid(`bills[${i}].watermarkMs`, 'must not be earlier than the previous bill\'s');
    out.push(referenceBill({ ...input, periodIndex: b.periodIndex, watermarkMs: b.watermarkMs, previousWatermarkMs: prev ? prev.watermarkMs : null }));
  });
  return out;
}
