/**
 * Properties of anniversary cycles over ten years: periods tile time with no
 * gap and no overlap, and each starts and ends at local midnight of the
 * clamped anniversary, across DST changes and leap years.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  billDate, cohortDaysEndingOn, cohortsEndingBetween, daysInMonth, formatLocalDate, localDateOf, parseLocalDate,
  periodAt, periodContaining, periodsEndedBy, periodsEndingBetween, type CycleSubscriber, type Period,
} from './cycles.ts';
import { SUPPORTED_TIME_ZONES } from './timezones.ts';

const NAMED_ZONES = [
  'America/St_Johns', 'America/Halifax', 'America/New_York', 'America/Chicago', 'America/Denver', 'America/Phoenix',
  'America/Los_Angeles', 'America/Anchorage', 'America/Regina', 'America/Puerto_Rico', 'Pacific/Honolulu',
];
const TEN_YEARS = 120;
const HOUR = 3_600_000;

/** A plain assertion: the loops below check ~100k periods, too many for expect()'s overhead. */
function check(ok: boolean, what: () => string): void {
  if (!ok) throw new Error(what());
}

/** Checks period k of `sub` on its own (bounds, clamped dates, local midnight, length). */
function checkPeriod(sub: CycleSubscriber, k: number): Period {
  const p = periodAt(sub, k);
  const { year, month, day } = parseLocalDate(sub.subscriptionDate);
  const total = year * 12 + month - 1 + k;
  const startY = Math.floor(total / 12), startM = (total % 12) + 1;
  const endY = Math.floor((total + 1) / 12), endM = ((total + 1) % 12) + 1;
  // the clamped anniversary, computed here independently of billDate
  const start = formatLocalDate(startY, startM, Math.min(day, daysInMonth(startY, startM)));
  const end = formatLocalDate(endY, endM, Math.min(day, daysInMonth(endY, endM)));
  const where = () => `${JSON.stringify(sub)} period ${k} ${JSON.stringify(p)}`;
  check(p.index === k && p.startLocal === start && p.endLocal === end, () => `expected ${start}..${end}: ${where()}`);
  // first instant of the local day: it reads the date, the millisecond before reads the day before
  check(localDateOf(p.startMs, sub.timeZone) === start, () => `start is not on ${start}: ${where()}`);
  check(localDateOf(p.startMs - 1, sub.timeZone) < start, () => `start is not the first instant of ${start}: ${where()}`);
  // 28 to 31 days, give or take the zone's offset changes: one DST hour, or two where a
  // zone also moved between Central and Eastern (Indiana/Winamac 2007, Iqaluit 1999)
  const hours = (p.endMs - p.startMs) / HOUR;
  check(hours >= 28 * 24 - 2 && hours <= 31 * 24 + 2, () => `${hours} h: ${where()}`);
  return p;
}

/** Periods 0..n-1 each check out and follow one another with no gap and no overlap (so each end is also checked as the next start). */
function checkTiling(sub: CycleSubscriber, periods: number): void {
  let prev: Period | undefined;
  for (let k = 0; k <= periods; k++) {
    const p = checkPeriod(sub, k);
    if (prev) check(p.startMs === prev.endMs && p.startLocal === prev.endLocal, () => `gap or overlap before period ${k} of ${JSON.stringify(sub)}`);
    prev = p;
  }
}

const localDate = (from: number, to: number) =>
  fc.date({ min: new Date(Date.UTC(from, 0, 1)), max: new Date(Date.UTC(to, 11, 31)), noInvalidDate: true })
    .map((d) => formatLocalDate(d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate()));
const subscriber = (zones: readonly string[]) =>
  fc.record({ subscriptionDate: localDate(1995, 2035), timeZone: fc.constantFrom(...zones) });

describe('cycle properties', () => {
  it.each(NAMED_ZONES)('%s: every anniversary day 1-31, joined in a leap and a common year, tiles ten years', (timeZone) => {
    for (const year of [2023, 2024]) {
      for (let d = 1; d <= 31; d++) {
        const month = d <= 28 ? 2 : 1; // days 29-31 join in January so that February clamps them
        checkTiling({ subscriptionDate: formatLocalDate(year, month, d), timeZone }, TEN_YEARS);
      }
    }
  });

  it('any served zone, any subscription date 1995-2035: ten years tile with clamped local-midnight bounds', () => {
    fc.assert(fc.property(subscriber(SUPPORTED_TIME_ZONES), (sub) => checkTiling(sub, TEN_YEARS)), { numRuns: 60 });
  });

  it('periodContaining(t) is the one period with start <= t < end, and t reads a date inside it', () => {
    fc.assert(
      fc.property(subscriber(SUPPORTED_TIME_ZONES), fc.integer({ min: -HOUR, max: 10 * 366 * 24 * HOUR }), (sub, offset) => {
        const t = periodAt(sub, 0).startMs + offset;
        const p = periodContaining(sub, t);
        if (offset < 0) {
          expect(p).toBeNull();
          return;
        }
        expect(p).not.toBeNull();
        expect(p!.startMs <= t && t < p!.endMs).toBe(true);
        expect(periodAt(sub, p!.index)).toEqual(p);
        // St_Johns repeated 23:01-00:00 before 2011, so a few instants of a period read the previous day
        if (sub.timeZone !== 'America/St_Johns' || t > Date.UTC(2012, 0, 1)) {
          const local = localDateOf(t, sub.timeZone);
          expect(local >= p!.startLocal && local < p!.endLocal).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('periodsEndedBy(a) + periodsEndingBetween(a, b) = periodsEndedBy(b) = catch-up after any billed prefix', () => {
    const span = 5 * 366 * 24 * HOUR;
    fc.assert(
      fc.property(subscriber(SUPPORTED_TIME_ZONES), fc.integer({ min: -span / 5, max: span }), fc.integer({ min: 0, max: span }), (sub, x, y) => {
        const t0 = periodAt(sub, 0).startMs;
        const a = t0 + Math.min(x, y), b = t0 + Math.max(x, y);
        const byA = periodsEndedBy(sub, a), byB = periodsEndedBy(sub, b);
        expect([...byA, ...periodsEndingBetween(sub, a, b)]).toEqual(byB);
        byB.forEach((p, i) => expect(p.index).toBe(i));
        expect(byB.every((p) => p.endMs <= b)).toBe(true);
        expect(periodAt(sub, byB.length).endMs > b).toBe(true);
        const last = byA[byA.length - 1];
        expect(periodsEndedBy(sub, b, last?.startMs)).toEqual(last ? byB.slice(byA.length) : byB);
      }),
      { numRuns: 300 },
    );
  });

  it('D is in cohortDaysEndingOn(L) exactly when L is the bill date of D in L\'s month', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 31 }), localDate(1999, 2040), (d, date) => {
        const { year, month } = parseLocalDate(date);
        expect(cohortDaysEndingOn(date).includes(d)).toBe(billDate(d, year, month) === date);
      }),
      { numRuns: 2000 },
    );
  });

  it('a period ends in a window exactly when its zone, bill date and anniversary day form a cohort of that window', () => {
    fc.assert(
      fc.property(subscriber(SUPPORTED_TIME_ZONES), fc.integer({ min: -40 * 24, max: 3 * 366 * 24 }), fc.integer({ min: 1, max: 72 }), (sub, startH, lenH) => {
        const from = periodAt(sub, 0).startMs + startH * HOUR, to = from + lenH * HOUR;
        const day = parseLocalDate(sub.subscriptionDate).day;
        const viaCohorts = cohortsEndingBetween(from, to, [sub.timeZone])
          .filter((c) => c.anniversaryDays.includes(day) && c.localDate > sub.subscriptionDate)
          .map((c) => [c.localDate, c.boundaryMs]);
        const viaPeriods = periodsEndingBetween(sub, from, to).map((p) => [p.endLocal, p.endMs]);
        expect(viaCohorts).toEqual(viaPeriods);
      }),
      { numRuns: 300 },
    );
  });
});
