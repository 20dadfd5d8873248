import { describe, expect, it } from 'vitest';
import {
  billDate, cohortDaysEndingOn, cohortsEndingBetween, localDateOf, parseLocalDate, periodAt, periodContaining,
  periodsEndedBy, periodsEndingBetween, startOfLocalDay,
} from './cycles.ts';
import { SUPPORTED_TIME_ZONES } from './timezones.ts';

const ms = (iso: string) => Date.parse(iso);
const iso = (n: number) => new Date(n).toISOString();
const HOUR = 3_600_000;

describe('billDate: day D or the month end, never carried forward', () => {
  it.each([
    [31, 2024, 1, '2024-01-31'], [31, 2024, 2, '2024-02-29'], [31, 2023, 2, '2023-02-28'], [31, 2024, 3, '2024-03-31'],
    [31, 2024, 4, '2024-04-30'], [31, 2024, 5, '2024-05-31'], [30, 2024, 2, '2024-02-29'], [30, 2025, 2, '2025-02-28'],
    [29, 2100, 2, '2100-02-28'], [29, 2000, 2, '2000-02-29'], [29, 2028, 2, '2028-02-29'], [28, 2023, 2, '2023-02-28'],
    [1, 2024, 12, '2024-12-01'], [15, 2024, 6, '2024-06-15'], [31, 2024, 9, '2024-09-30'], [31, 2024, 12, '2024-12-31'],
  ])('D=%i in %i-%i → %s', (d, y, m, expected) => {
    expect(billDate(d, y, m)).toBe(expected);
  });

  it.each([
    [0, 2024, 1, 'anniversaryDay: must be an integer 1-31, got 0'],
    [32, 2024, 1, 'anniversaryDay: must be an integer 1-31, got 32'],
    [1.5, 2024, 1, 'anniversaryDay: must be an integer 1-31, got 1.5'],
    [1, 2024, 0, 'month: must be an integer 1-12, got 0'],
    [1, 2024, 13, 'month: must be an integer 1-12, got 13'],
  ])('refuses D=%s %s-%s', (d, y, m, message) => {
    expect(() => billDate(d, y, m)).toThrow(message);
  });
});

describe('parseLocalDate', () => {
  it.each([
    ['2023-02-29', 'subscriptionDate: 2023-02-29 does not exist (2023-02 has 28 days)'],
    ['2024-13-01', 'subscriptionDate: month must be 01-12, got 2024-13-01'],
    ['2024-1-01', 'subscriptionDate: must be a calendar date YYYY-MM-DD, got "2024-1-01"'],
    ['2024-01-01T00:00:00Z', 'subscriptionDate: must be a calendar date YYYY-MM-DD, got "2024-01-01T00:00:00Z"'],
    [20240101, 'subscriptionDate: must be a calendar date YYYY-MM-DD, got 20240101'],
  ])('refuses %j naming the field', (v, message) => {
    expect(() => parseLocalDate(v, 'subscriptionDate')).toThrow(message);
  });
});

describe('periods', () => {
  it.each([
    // joined, zone, [startLocal, endLocal] of periods 0..n
    ['2024-01-31', 'America/New_York', ['2024-01-31', '2024-02-29', '2024-03-31', '2024-04-30', '2024-05-31', '2024-06-30']],
    ['2023-01-31', 'America/Chicago', ['2023-01-31', '2023-02-28', '2023-03-31', '2023-04-30', '2023-05-31']],
    ['2024-02-29', 'Pacific/Honolulu', ['2024-02-29', '2024-03-29', '2024-04-29']],
    ['2023-12-30', 'America/St_Johns', ['2023-12-30', '2024-01-30', '2024-02-29', '2024-03-30']],
    ['2024-11-15', 'America/Regina', ['2024-11-15', '2024-12-15', '2025-01-15', '2025-02-15']],
  ])('joined %s in %s: bill dates %j', (subscriptionDate, timeZone, dates) => {
    const sub = { subscriptionDate, timeZone };
    for (let k = 0; k < dates.length - 1; k++) {
      const p = periodAt(sub, k);
      expect([p.index, p.startLocal, p.endLocal]).toEqual([k, dates[k], dates[k + 1]]);
      expect(p.startMs).toBe(startOfLocalDay(dates[k]!, timeZone));
    }
  });

  it('leap-day subscriber bills on Feb 28 in common years and goes back to the 29th', () => {
    const sub = { subscriptionDate: '2024-02-29', timeZone: 'America/Denver' };
    expect([periodAt(sub, 11).startLocal, periodAt(sub, 11).endLocal, periodAt(sub, 12).endLocal]).toEqual(['2025-01-29', '2025-02-28', '2025-03-29']);
    expect(periodAt(sub, 48).startLocal).toBe('2028-02-29');
  });

  it.each([
    // zone, joined, index, startISO, endISO, hours
    ['America/New_York', '2024-02-10', 1, '2024-03-10T05:00:00.000Z', '2024-04-10T04:00:00.000Z', 31 * 24 - 1], // spring forward inside
    ['America/New_York', '2024-10-03', 1, '2024-11-03T04:00:00.000Z', '2024-12-03T05:00:00.000Z', 30 * 24 + 1], // period starts on the fall-back day
    ['America/St_Johns', '2024-10-15', 0, '2024-10-15T02:30:00.000Z', '2024-11-15T03:30:00.000Z', 31 * 24 + 1],
    ['America/Halifax', '2024-03-10', 0, '2024-03-10T04:00:00.000Z', '2024-04-10T03:00:00.000Z', 31 * 24 - 1],
    ['Pacific/Honolulu', '2024-03-10', 0, '2024-03-10T10:00:00.000Z', '2024-04-10T10:00:00.000Z', 31 * 24],
    ['America/Phoenix', '2024-03-10', 0, '2024-03-10T07:00:00.000Z', '2024-04-10T07:00:00.000Z', 31 * 24],
    ['America/Anchorage', '2023-01-31', 1, '2023-02-28T09:00:00.000Z', '2023-03-31T08:00:00.000Z', 31 * 24 - 1],
    ['America/Puerto_Rico', '2024-01-31', 1, '2024-02-29T04:00:00.000Z', '2024-03-31T04:00:00.000Z', 31 * 24],
  ])('%s joined %s: period %i is [%s, %s), %i hours', (timeZone, subscriptionDate, index, start, end, hours) => {
    const p = periodAt({ subscriptionDate, timeZone }, index);
    expect([iso(p.startMs), iso(p.endMs), (p.endMs - p.startMs) / HOUR]).toEqual([start, end, hours]);
  });

  it('refuses an unknown zone, naming the field', () => {
    expect(() => periodAt({ subscriptionDate: '2024-01-01', timeZone: 'Mars/Olympus' }, 0)).toThrow('timeZone: unknown IANA time zone "Mars/Olympus"');
  });
});

describe('local midnight on unusual days', () => {
  it.each([
    // midnight skipped: Cuba springs forward 00:00 → 01:00, Chile 24:00 → 01:00; the day starts right after the gap
    ['America/Havana', '2024-03-10', '2024-03-10T05:00:00.000Z'],
    ['America/Santiago', '2024-09-08', '2024-09-08T04:00:00.000Z'],
    // midnight happened twice (St_Johns fell back at 00:01 until 2011): the first time
    ['America/St_Johns', '2010-11-07', '2010-11-07T02:30:00.000Z'],
    // a day that did not exist at all (Samoa crossed the date line): it starts where the next day starts
    ['Pacific/Apia', '2011-12-30', '2011-12-30T10:00:00.000Z'],
    ['Pacific/Apia', '2011-12-31', '2011-12-30T10:00:00.000Z'],
    // ordinary DST days in served zones: midnight exists
    ['America/New_York', '2024-03-10', '2024-03-10T05:00:00.000Z'],
    ['America/New_York', '2024-11-03', '2024-11-03T04:00:00.000Z'],
    ['America/St_Johns', '2024-03-10', '2024-03-10T03:30:00.000Z'],
  ])('%s %s starts at %s', (timeZone, date, expected) => {
    expect(iso(startOfLocalDay(date, timeZone))).toBe(expected);
  });

  it('the instant before a day start reads the previous day', () => {
    const t = startOfLocalDay('2024-03-10', 'America/Havana');
    expect([localDateOf(t - 1, 'America/Havana'), localDateOf(t, 'America/Havana')]).toEqual(['2024-03-09', '2024-03-10']);
  });
});

describe('periodContaining', () => {
  const sub = { subscriptionDate: '2024-01-31', timeZone: 'America/New_York' };
  it.each([
    ['2024-01-31T04:59:59.999Z', null],
    ['2024-01-31T05:00:00.000Z', 0],
    ['2024-02-29T04:59:59.999Z', 0],
    ['2024-02-29T05:00:00.000Z', 1],
    ['2024-03-31T03:59:59.999Z', 1],
    ['2024-03-31T04:00:00.000Z', 2],
    ['2034-01-31T04:59:59.999Z', 119],
  ])('%s → period %s', (at, index) => {
    expect(periodContaining(sub, ms(at))?.index ?? null).toBe(index);
  });
});

describe('catch-up lists', () => {
  const sub = { subscriptionDate: '2024-01-31', timeZone: 'America/New_York' };
  it('periodsEndedBy lists every ended period, inclusive of an end exactly at asOf', () => {
    expect(periodsEndedBy(sub, ms('2024-05-31T03:59:59.999Z')).map((p) => p.endLocal)).toEqual(['2024-02-29', '2024-03-31', '2024-04-30']);
    expect(periodsEndedBy(sub, ms('2024-05-31T04:00:00.000Z')).map((p) => p.index)).toEqual([0, 1, 2, 3]);
    expect(periodsEndedBy(sub, ms('2024-01-01T00:00:00Z'))).toEqual([]);
  });

  it('periodsEndedBy after the last billed period start lists only the missed ones', () => {
    const lastBilled = periodAt(sub, 1);
    expect(periodsEndedBy(sub, ms('2024-05-31T04:00:00.000Z'), lastBilled.startMs).map((p) => p.index)).toEqual([2, 3]);
    expect(periodsEndedBy(sub, ms('2024-05-31T04:00:00.000Z'), periodAt(sub, 3).startMs)).toEqual([]);
  });

  it('periodsEndingBetween is (from, to]', () => {
    const end1 = periodAt(sub, 1).endMs;
    expect(periodsEndingBetween(sub, end1 - 1, end1).map((p) => p.index)).toEqual([1]);
    expect(periodsEndingBetween(sub, end1, end1 + 1)).toEqual([]);
    expect(periodsEndingBetween(sub, ms('2023-01-01T00:00:00Z'), ms('2024-04-30T04:00:00Z')).map((p) => p.index)).toEqual([0, 1, 2]);
  });
});

describe('cohorts', () => {
  it.each([
    ['2023-02-28', [28, 29, 30, 31]],
    ['2024-02-28', [28]],
    ['2024-02-29', [29, 30, 31]],
    ['2024-04-30', [30, 31]],
    ['2024-03-30', [30]],
    ['2024-03-31', [31]],
    ['2024-06-01', [1]],
  ])('bills on %s: anniversary days %j', (date, days) => {
    expect(cohortDaysEndingOn(date)).toEqual(days);
  });

  it('cohortsEndingBetween finds each zone whose local midnight falls in (from, to]', () => {
    const at = ms('2024-03-01T05:00:00Z'); // midnight in Eastern Standard Time
    const cohorts = cohortsEndingBetween(at - 1, at, SUPPORTED_TIME_ZONES);
    expect(cohorts.map((c) => c.timeZone)).toContain('America/New_York');
    expect(cohorts.map((c) => c.timeZone)).not.toContain('America/Chicago');
    for (const c of cohorts) expect([c.localDate, c.boundaryMs, c.anniversaryDays]).toEqual(['2024-03-01', at, [1]]);
    expect(cohortsEndingBetween(at, at + 1, SUPPORTED_TIME_ZONES)).toEqual([]);
  });

  it('cohortsEndingBetween over a day gives one date per zone, St_Johns first and Honolulu last', () => {
    const from = ms('2024-07-01T00:00:00Z');
    const cohorts = cohortsEndingBetween(from, from + 24 * HOUR, ['Pacific/Honolulu', 'America/St_Johns', 'America/New_York']);
    expect(cohorts.map((c) => [c.timeZone, c.localDate, iso(c.boundaryMs)])).toEqual([
      ['America/St_Johns', '2024-07-01', '2024-07-01T02:30:00.000Z'],
      ['America/New_York', '2024-07-01', '2024-07-01T04:00:00.000Z'],
      ['Pacific/Honolulu', '2024-07-01', '2024-07-01T10:00:00.000Z'],
    ]);
  });
});
