/**
 * Anniversary billing cycles, pure: which local dates a subscriber is billed
 * on, and the UTC instants their periods start and end.
 *
 * - The anniversary day D is the day of the subscription date. The bill date
 *   in a month is D, or the month's last day when the month is shorter. The
 *   clamp never carries forward: D = 31 bills Jan 31, Feb 28/29, Mar 31,
 *   Apr 30, May 31. Bill dates are computed from the subscription month plus
 *   k months, never from the previous bill date.
 * - Period k runs from local midnight of bill date k to local midnight of bill
 *   date k+1 in the subscriber's zone, [startMs, endMs). Period 0 starts on
 *   the subscription date itself (which always equals bill date 0).
 * - "Local midnight" is the first instant at which the subscriber's wall clock
 *   reads that date: where midnight is skipped by a DST change (zones that
 *   switch at 00:00, e.g. America/Havana) that is the instant right after the
 *   gap; where midnight happens twice (America/St_Johns switched at 00:01
 *   until 2011) it is the first time. No US or Canadian zone skips midnight
 *   today; the rule exists so that every date has exactly one boundary.
 *
 * Zone math uses luxon's IANA zone offsets; boundaries are cached per
 * (zone, date), of which there are few, so a billing run over many
 * subscribers pays for each boundary once.
 */
import { IANAZone } from 'luxon';
import { invalid } from '../../core/errors.ts';

/** A calendar date in the subscriber's zone, `YYYY-MM-DD`. */
export type LocalDate = string;

export interface CivilDate {
  readonly year: number;
  readonly month: number;
  readonly day: number;
}

/** A billing period: [startMs, endMs) in UTC, with its local bill dates (endLocal = the next bill date). */
export interface Period {
  readonly index: number;
  readonly startMs: number;
  readonly endMs: number;
  readonly startLocal: LocalDate;
  readonly endLocal: LocalDate;
}

/** The two subscriber facts a cycle depends on. */
export interface CycleSubscriber {
  readonly subscriptionDate: LocalDate;
  readonly timeZone: string;
}

/** Subscribers of one zone whose period ends at the start of `localDate`. */
export interface Cohort {
  readonly timeZone: string;
  /** The bill date: periods of this cohort end at its local midnight. */
  readonly localDate: LocalDate;
  /** That local midnight as a UTC instant (= the periods' endMs). */
  readonly boundaryMs: number;
  /** Anniversary days billed on localDate (see cohortDaysEndingOn). Only subscribers with subscriptionDate < localDate have a period ending there. */
  readonly anniversaryDays: readonly number[];
}

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

const pad = (n: number, w: number) => String(n).padStart(w, '0');

export function formatLocalDate(year: number, month: number, day: number): LocalDate {
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`;
}

export function parseLocalDate(value: unknown, field = 'date'): CivilDate {
  const m = typeof value === 'string' ? DATE_RE.exec(value) : null;
  if (!m) throw invalid(field, `must be a calendar date YYYY-MM-DD, got ${JSON.stringify(value)}`);
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (year < 1000) throw invalid(field, `year must be 1000 or later, got ${value}`);
  if (month < 1 || month > 12) throw invalid(field, `month must be 01-12, got ${value}`);
  if (day < 1 || day > daysInMonth(year, month)) throw invalid(field, `${value} does not exist (${pad(year, 4)}-${pad(month, 2)} has ${daysInMonth(year, month)} days)`);
  return { year, month, day };
}

export function addDays(date: LocalDate, days: number): LocalDate {
  const { year, month, day } = parseLocalDate(date);
  const d = new Date(Date.UTC(year, month - 1, day) + days * DAY_MS);
  return formatLocalDate(d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate());
}

export function anniversaryDayOf(subscriptionDate: LocalDate): number {
  return parseLocalDate(subscriptionDate, 'subscriptionDate').day;
}

function checkInt(field: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) throw invalid(field, `must be an integer ${min}-${max}, got ${v}`);
}

/** The bill date of anniversary day D in a month (1-12): day D, or the month's last day when the month is shorter. */
export function billDate(anniversaryDay: number, year: number, month: number): LocalDate {
  checkInt('anniversaryDay', anniversaryDay, 1, 31);
  checkInt('year', year, 1000, 9999);
  checkInt('month', month, 1, 12);
  return formatLocalDate(year, month, Math.min(anniversaryDay, daysInMonth(year, month)));
}

/** The anniversary days whose bill date is `localDate`: [day], or day..31 on a month's last day (Feb 28 2023 → 28, 29, 30, 31). */
export function cohortDaysEndingOn(localDate: LocalDate): number[] {
  const { year, month, day } = parseLocalDate(localDate, 'localDate');
  if (day < daysInMonth(year, month)) return [day];
  const days: number[] = [];
  for (let d = day; d <= 31; d++) days.push(d);
  return days;
}

function zoneOf(timeZone: string): IANAZone {
  const zone = typeof timeZone === 'string' ? IANAZone.create(timeZone) : undefined;
  if (!zone || !zone.isValid) throw invalid('timeZone', `unknown IANA time zone ${JSON.stringify(timeZone)}`);
  return zone;
}

/** The local calendar date of an instant in a zone. */
export function localDateOf(instantMs: number, timeZone: string): LocalDate {
  checkInstant('instantMs', instantMs);
  const zone = zoneOf(timeZone);
  const wall = new Date(instantMs + zone.offset(instantMs) * MINUTE_MS);
  return formatLocalDate(wall.getUTCFullYear(), wall.getUTCMonth() + 1, wall.getUTCDate());
}

/**
 * The first instant whose wall-clock reading in `zone` is at or after `wall`
 * (wall time expressed as if it were UTC). Assumes at most one offset change
 * within a day either side, which holds for every zone in the tz database.
 */
function firstInstantAtOrAfterWall(zone: IANAZone, wall: number): number {
  const offsets = new Set([zone.offset(wall - DAY_MS), zone.offset(wall), zone.offset(wall + DAY_MS)]);
  const candidates = [...offsets].map((o) => wall - o * MINUTE_MS).sort((a, b) => a - b);
  const wallAt = (t: number) => t + zone.offset(t) * MINUTE_MS;
  for (const t of candidates) if (wallAt(t) === wall) return t; // earliest real occurrence
  // The wall time falls in a gap: the first instant after it is the transition.
  let lo = candidates[0]!;
  let hi = candidates[candidates.length - 1]!;
  if (!(wallAt(lo) < wall && wallAt(hi) >= wall)) throw new Error(`cannot place wall time ${new Date(wall).toISOString()} in ${zone.name}`);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (wallAt(mid) >= wall) hi = mid;
    else lo = mid;
  }
  return hi;
}

const boundaryCache = new Map<string, number>();
const BOUNDARY_CACHE_MAX = 500_000;

/** Local midnight of `date` in `timeZone` as a UTC instant (see the module note for DST days). */
export function startOfLocalDay(date: LocalDate, timeZone: string): number {
  const key = `${timeZone} ${date}`;
  const hit = boundaryCache.get(key);
  if (hit !== undefined) return hit;
  const { year, month, day } = parseLocalDate(date);
  const ms = firstInstantAtOrAfterWall(zoneOf(timeZone), Date.UTC(year, month - 1, day));
  if (boundaryCache.size >= BOUNDARY_CACHE_MAX) boundaryCache.clear();
  boundaryCache.set(key, ms);
  return ms;
}

function checkInstant(field: string, ms: number): void {
  if (!Number.isFinite(ms)) throw invalid(field, `must be a finite instant in milliseconds, got ${ms}`);
}

interface Anchor { year: number; month: number; day: number; timeZone: string }

function anchorOf(sub: CycleSubscriber): Anchor {
  const { year, month, day } = parseLocalDate(sub.subscriptionDate, 'subscriptionDate');
  zoneOf(sub.timeZone);
  return { year, month, day, timeZone: sub.timeZone };
}

function billDateAt(a: Anchor, monthsAfter: number): LocalDate {
  const total = a.year * 12 + (a.month - 1) + monthsAfter;
  return billDate(a.day, Math.floor(total / 12), (total % 12) + 1);
}

function periodOf(a: Anchor, index: number): Period {
  const startLocal = billDateAt(a, index);
  const endLocal = billDateAt(a, index + 1);
  return Object.freeze({
    index,
    startMs: startOfLocalDay(startLocal, a.timeZone),
    endMs: startOfLocalDay(endLocal, a.timeZone),
    startLocal,
    endLocal,
  });
}

/** Period number `index` (0 = the one starting on the subscription date). */
export function periodAt(sub: CycleSubscriber, index: number): Period {
  checkInt('index', index, 0, 12 * 8000);
  return periodOf(anchorOf(sub), index);
}

function containing(a: Anchor, instantMs: number): Period | null {
  const first = periodOf(a, 0);
  if (instantMs < first.startMs) return null;
  const local = parseLocalDate(localDateOf(instantMs, a.timeZone));
  // Estimate from the local date, then settle on the instants (DST edges).
  let k = (local.year * 12 + local.month - 1) - (a.year * 12 + a.month - 1);
  if (local.day < Math.min(a.day, daysInMonth(local.year, local.month))) k -= 1;
  k = Math.max(k, 0);
  let p = periodOf(a, k);
  while (instantMs < p.startMs && k > 0) p = periodOf(a, --k);
  while (instantMs >= p.endMs) p = periodOf(a, ++k);
  return p;
}

/** The period holding an instant (a call belongs to the period in which it starts); null before the subscription. */
export function periodContaining(sub: CycleSubscriber, instantMs: number): Period | null {
  checkInstant('instantMs', instantMs);
  return containing(anchorOf(sub), instantMs);
}

/** Periods with fromMs < endMs <= toMs, oldest first. */
export function periodsEndingBetween(sub: CycleSubscriber, fromMs: number, toMs: number): Period[] {
  checkInstant('fromMs', fromMs);
  checkInstant('toMs', toMs);
  const a = anchorOf(sub);
  const out: Period[] = [];
  if (!(toMs > fromMs)) return out;
  let k = containing(a, fromMs)?.index ?? 0;
  for (let p = periodOf(a, k); p.endMs <= toMs; p = periodOf(a, ++k)) if (p.endMs > fromMs) out.push(p);
  return out;
}

/**
 * Every period that has ended by asOfMs (endMs <= asOfMs), oldest first; with
 * afterPeriodStartMs (the start of the last period already billed), only the
 * periods starting after it: the catch-up list of a billing run. The caller
 * subtracts its grace from asOf.
 */
export function periodsEndedBy(sub: CycleSubscriber, asOfMs: number, afterPeriodStartMs?: number): Period[] {
  checkInstant('asOfMs', asOfMs);
  const a = anchorOf(sub);
  let k = 0;
  if (afterPeriodStartMs !== undefined) {
    checkInstant('afterPeriodStartMs', afterPeriodStartMs);
    const last = containing(a, afterPeriodStartMs);
    k = last ? last.index + 1 : 0;
  }
  const out: Period[] = [];
  for (let p = periodOf(a, k); p.endMs <= asOfMs; p = periodOf(a, ++k)) out.push(p);
  return out;
}

/**
 * The cohorts whose periods end in (fromMs, toMs]: for each zone, each local
 * date whose midnight falls in the window, with the anniversary days billed
 * that date. A billing run selects subscribers by (timeZone, anniversary day
 * in anniversaryDays, subscriptionDate < localDate).
 */
export function cohortsEndingBetween(fromMs: number, toMs: number, zones: readonly string[]): Cohort[] {
  checkInstant('fromMs', fromMs);
  checkInstant('toMs', toMs);
  const out: Cohort[] = [];
  if (!(toMs > fromMs)) return out;
  for (const timeZone of zones) {
    for (let date = addDays(localDateOf(fromMs, timeZone), -1); ; date = addDays(date, 1)) {
      const boundaryMs = startOfLocalDay(date, timeZone);
      if (boundaryMs > toMs) break;
      if (boundaryMs > fromMs) out.push(Object.freeze({ timeZone, localDate: date, boundaryMs, anniversaryDays: Object.freeze(cohortDaysEndingOn(date)) }));
    }
  }
  return out.sort((x, y) => x.boundaryMs - y.boundaryMs || (x.timeZone < y.timeZone ? -1 : x.timeZone > y.timeZone ? 1 : 0));
}
