/**
 * The reference rater against amounts computed by hand. Rates: standard
 * 5/10/45/199 ¢ per minute, 60 s increments; saver 2.5/7.25/32.125 ¢ per
 * minute (29.875 and 2.75 from 2025-07-01 04:00Z), 6 s increments, premium 60 s.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { DEFAULT_TARIFF_PATH, loadTariff, parseTariff } from './tariff.ts';
import { formatLocalDate, periodAt } from './cycles.ts';
import { SUPPORTED_TIME_ZONES } from './timezones.ts';
import { referenceBill, referenceBills, referenceClassify, dedupeCalls, type RaterCall, type RaterSubscriber } from './reference-rater.ts';

const tariff = loadTariff();
const ms = (iso: string) => Date.parse(iso);
const NY = '+12125550100';
const sub = (over: Partial<RaterSubscriber> = {}): RaterSubscriber => ({
  id: 'sub-1', phoneNumber: NY, subscriptionDate: '2024-01-31', timeZone: 'America/New_York', plan: 'standard', ...over,
});
let n = 0;
/** A call from `source` starting at `start` lasting `durMs`, ingested at `ingested` (default: an hour after it ends). */
const call = (target: string, start: string, durMs: number, o: { source?: string; ingested?: string; id?: string } = {}): RaterCall => ({
  callId: o.id ?? `c${++n}`,
  source: o.source ?? NY,
  target,
  startMs: ms(start),
  endMs: ms(start) + durMs,
  ingestedAtMs: o.ingested ? ms(o.ingested) : ms(start) + durMs + 3_600_000,
});
const brief = (lines: readonly { kind: string; calls: number; minutes: number; amountCents: number }[]) =>
  lines.map((l) => [l.kind, l.calls, l.minutes, l.amountCents]);

describe('referenceClassify', () => {
  it.each([
    [NY, '911', 'service_code'], [NY, '988', 'service_code'], [NY, '211', 'service_code'],
    [NY, '+18005550100', 'toll_free'], [NY, '+18335550100', 'toll_free'], [NY, '+18885550100', 'toll_free'],
    [NY, '+19005550100', 'premium'],
    [NY, '+13125550100', 'domestic'], [NY, '+17875550100', 'domestic'], [NY, '+13405550100', 'domestic'],
    [NY, '+16715550100', 'domestic'], [NY, '+16845550100', 'domestic'],
    [NY, '+14165550100', 'cross_border'], [NY, '+18765550100', 'nanp_international'], [NY, '+12425550100', 'nanp_international'],
    ['+14165550100', '+16045550100', 'domestic'], ['+14165550100', NY, 'cross_border'], ['+14165550100', '+17875550100', 'cross_border'],
    ['+14165550100', '+18765550100', 'nanp_international'], ['+17875550100', NY, 'domestic'],
  ])('%s → %s is %s', (source, target, cls) => {
    expect(referenceClassify(source, target)).toBe(cls);
  });

  it.each([
    ['+447911123456', 'target: not a NANP number in E.164 (+1NPANXXXXXX): "+447911123456"'],
    ['12125550100', 'target: not a NANP number in E.164 (+1NPANXXXXXX): "12125550100"'],
    ['+12005550100', 'target: not a NANP number in E.164 (+1NPANXXXXXX): "+12005550100"'],
    ['912', 'target: not a NANP number in E.164 (+1NPANXXXXXX): "912"'],
  ])('refuses target %s', (target, message) => {
    expect(() => referenceClassify(NY, target)).toThrow(message);
  });
});

describe('dedupeCalls', () => {
  it('keeps the first ingested copy of each callId', () => {
    const a = { callId: 'x', source: NY, target: '911', startMs: 0, endMs: 1000, ingestedAtMs: 50 };
    const b = { ...a, endMs: 2000, ingestedAtMs: 10 };
    const c = { ...a, endMs: 3000, ingestedAtMs: 10 };
    expect(dedupeCalls([a, b, c, { ...a, callId: 'y' }]).map((x) => [x.callId, x.endMs])).toEqual([['x', 2000], ['y', 1000]]);
  });
});

describe('referenceBill: standard plan, one period', () => {
  // period 1 of a New York subscriber joined 2024-01-31: [2024-02-29T05:00Z, 2024-03-31T04:00Z), with the 2024-03-10 DST change
  const calls = [
    call('+13125550100', '2024-03-01T15:00:00Z', 61_000, { id: 'dom-61s' }), // 2 min
    call('+13125550100', '2024-03-02T15:00:00Z', 0), // 0 s call: 0 min
    call('+14165550100', '2024-03-03T15:00:00Z', 30_000), // 1 min cross-border
    call('+18765550100', '2024-03-04T15:00:00Z', 125_000), // 3 min NANP international
    call('+19005550100', '2024-03-05T15:00:00Z', 60_000), // 1 min premium
    call('+18005550100', '2024-03-06T15:00:00Z', 600_000), // 10 min toll-free
    call('911', '2024-03-07T15:00:00Z', 90_000), // 2 min service code
    call('+17875550100', '2024-03-08T15:00:00Z', 1), // Puerto Rico is domestic: 1 min
    call('+13125550100', '2024-03-31T03:59:00Z', 660_000), // crosses the period end: 11 min, billed here
    call('+13125550100', '2024-03-10T06:30:00Z', 3_600_000), // 01:30 EST → 03:30 EDT on the DST day: 60 min
    call('+13125550100', '2024-03-01T15:00:00Z', 61_000, { id: 'dom-61s', ingested: '2024-03-02T00:00:00Z' }), // resend: once
    call(NY, '2024-03-09T15:00:00Z', 600_000, { source: '+13125550100' }), // incoming: free, not on this bill
    call('+13125550100', '2024-03-31T04:00:00Z', 60_000), // starts in the next period
    call('+13125550100', '2024-02-29T04:59:59.999Z', 60_000), // belongs to the previous period
    call('+13125550100', '2024-03-09T15:00:00Z', 60_000, { source: '+13125550199' }), // someone else's call
  ];
  const bill = referenceBill({ tariff, subscriber: sub(), calls, periodIndex: 1, watermarkMs: ms('2024-04-01T00:00:00Z'), previousWatermarkMs: ms('2024-03-01T00:00:00Z') });

  it('bills the period between local midnights of Feb 29 and Mar 31', () => {
    expect(bill.period).toEqual({ index: 1, startMs: ms('2024-02-29T05:00:00Z'), endMs: ms('2024-03-31T04:00:00Z'), startLocal: '2024-02-29', endLocal: '2024-03-31' });
    expect([bill.subscriberId, bill.currency]).toEqual(['sub-1', 'USD']);
  });

  it('has a line per class with calls, free ones too, with the hand-computed amounts', () => {
    expect(bill.lines.map((l) => [l.kind, l.description, l.calls, l.billableSeconds, l.minutes, l.amountCents])).toEqual([
      ['monthly_service', 'Monthly service', 0, 0, 0, 2000],
      ['domestic', 'Domestic', 5, 4440, 74, 370], // 2 + 0 + 1 + 11 + 60 min × 5 ¢
      ['cross_border', 'Cross-border', 1, 60, 1, 10],
      ['nanp_international', 'NANP international', 1, 180, 3, 135],
      ['premium', 'Premium (pay-per-call)', 1, 60, 1, 199],
      ['toll_free', 'Toll-free', 1, 600, 10, 0],
      ['service_code', 'Service codes', 1, 120, 2, 0],
    ]);
    expect(bill.totalCents).toBe(2714);
  });

  it('a subscriber with no calls gets the monthly line only', () => {
    const quiet = referenceBill({ tariff, subscriber: sub({ phoneNumber: '+13035550100' }), calls, periodIndex: 1, watermarkMs: ms('2024-04-01T00:00:00Z'), previousWatermarkMs: null });
    expect([brief(quiet.lines), quiet.totalCents]).toEqual([[['monthly_service', 0, 0, 2000]], 2000]);
  });
});

describe('referenceBill: saver plan, 6 s increments and fractional cents, one half-up rounding per line', () => {
  const saver = sub({ plan: 'saver', subscriptionDate: '2024-05-15', timeZone: 'America/Chicago' });
  const at = '2024-05-20T15:00:00Z';
  it.each([
    ['12 s domestic = 0.5 ¢ → 1 ¢ (half up)', [call('+13125550100', at, 12_000)], ['domestic', 1, 1, 1]],
    ['6 s domestic = 0.25 ¢ → 0 ¢', [call('+13125550100', at, 1)], ['domestic', 1, 1, 0]],
    ['three 6 s calls = 0.75 ¢ → 1 ¢ (per-call rounding would give 0)', [call('+13125550100', at, 6_000), call('+13125550100', at, 5_000), call('+13125550100', at, 1)], ['domestic', 3, 1, 1]],
    ['7 s NANP international → 12 s × 32.125 ¢/min = 6.425 ¢ → 6 ¢', [call('+18765550100', at, 7_000)], ['nanp_international', 1, 1, 6]],
    ['90.5 s cross-border → 96 s × 7.25 ¢/min = 11.6 ¢ → 12 ¢', [call('+14165550100', at, 90_500)], ['cross_border', 1, 2, 12]],
    ['61 s premium on 60 s increments → 2 min × 199 ¢', [call('+19005550100', at, 61_000)], ['premium', 1, 2, 398]],
    ['0 ms call bills 0 s', [call('+13125550100', at, 0)], ['domestic', 1, 0, 0]],
  ])('%s', (_name, calls, line) => {
    const bill = referenceBill({ tariff, subscriber: saver, calls, periodIndex: 0, watermarkMs: ms('2024-07-01T00:00:00Z'), previousWatermarkMs: null });
    expect(brief(bill.lines)).toEqual([['monthly_service', 0, 0, 1500], line]);
  });

  it('applies the 2025-07-01 04:00Z rate change by each call\'s start instant', () => {
    const s = sub({ plan: 'saver', subscriptionDate: '2025-06-15' });
    const calls = [
      call('+13125550100', '2025-07-01T03:59:59.999Z', 60_000), // old rate: 2.5 ¢
      call('+13125550100', '2025-07-01T04:00:00.000Z', 60_000), // new rate: 2.75 ¢ → 5.25 ¢ → 5 ¢
      call('+18765550100', '2025-07-01T03:00:00Z', 60_000), // 32.125 ¢
      call('+18765550100', '2025-07-02T03:00:00Z', 60_000), // 29.875 ¢ → 62 ¢
    ];
    const bill = referenceBill({ tariff, subscriber: s, calls, periodIndex: 0, watermarkMs: ms('2025-08-01T00:00:00Z'), previousWatermarkMs: null });
    expect(brief(bill.lines)).toEqual([['monthly_service', 0, 0, 1500], ['domestic', 2, 2, 5], ['nanp_international', 2, 2, 62]]);
    expect(bill.totalCents).toBe(1567);
  });

  it('takes the monthly fee and descriptions from the version in effect at the period start', () => {
    const doc = JSON.parse(readFileSync(DEFAULT_TARIFF_PATH, 'utf8'));
    const v2 = JSON.parse(JSON.stringify(doc.plans.standard.versions[0]));
    Object.assign(v2, { effectiveFrom: '2024-03-15T00:00:00Z', monthlyCents: 2500, monthlyDescription: 'Monthly service (new)' });
    v2.classes.domestic.rateMilliCentsPerMinute = 6000;
    doc.plans.standard.versions.push(v2);
    const custom = parseTariff(doc);
    const calls = [call('+13125550100', '2024-03-14T12:00:00Z', 60_000), call('+13125550100', '2024-03-16T12:00:00Z', 60_000)];
    const p1 = referenceBill({ tariff: custom, subscriber: sub(), calls, periodIndex: 1, watermarkMs: ms('2024-04-01T00:00:00Z'), previousWatermarkMs: null });
    expect(p1.lines.map((l) => [l.description, l.amountCents])).toEqual([['Monthly service', 2000], ['Domestic', 11]]);
    const p2 = referenceBill({ tariff: custom, subscriber: sub(), calls: [], periodIndex: 2, watermarkMs: ms('2024-05-01T00:00:00Z'), previousWatermarkMs: null });
    expect(p2.lines.map((l) => [l.description, l.amountCents])).toEqual([['Monthly service (new)', 2500]]);
  });
});

describe('late usage', () => {
  const W0 = '2024-02-29T06:00:00Z';
  const W1 = '2024-03-31T05:00:00Z';
  const W2 = '2024-04-30T05:00:00Z';
  const calls = [
    call('+13125550100', '2024-02-10T15:00:00Z', 60_000, { id: 'A', ingested: '2024-02-10T16:00:00Z' }), // on bill 0
    call('+13125550100', '2024-02-11T15:00:00Z', 60_000, { id: 'H', ingested: W0 }), // exactly at the watermark: on bill 0
    call('+13125550100', '2024-02-28T15:00:00Z', 120_000, { id: 'B', ingested: '2024-02-29T07:00:00Z' }), // late: bill 1
    call('+14165550100', '2024-02-20T15:00:00Z', 60_000, { id: 'C', ingested: W1 }), // late, at bill 1's watermark: bill 1
    call('+13125550100', '2024-02-10T15:00:00Z', 60_000, { id: 'A', ingested: '2024-03-05T00:00:00Z' }), // resent after billing: never again
    call('+13125550100', '2024-02-12T15:00:00Z', 60_000, { id: 'E', ingested: '2024-04-01T00:00:00Z' }), // period 0, very late: bill 2
    call('+13125550100', '2024-03-15T15:00:00Z', 60_000, { id: 'F', ingested: '2024-03-15T16:00:00Z' }), // on bill 1
    call('+19005550100', '2024-03-30T15:00:00Z', 60_000, { id: 'G', ingested: '2024-03-31T06:00:00Z' }), // period 1, late: bill 2
    call('+19005550100', '2024-03-30T16:00:00Z', 60_000, { id: 'Z', ingested: '2024-05-02T00:00:00Z' }), // after W2: on no bill yet
  ];
  const bills = referenceBills({
    tariff, subscriber: sub(), calls,
    bills: [{ periodIndex: 0, watermarkMs: ms(W0) }, { periodIndex: 1, watermarkMs: ms(W1) }, { periodIndex: 2, watermarkMs: ms(W2) }],
  });

  it('bill 0 has the calls ingested up to its watermark, inclusive', () => {
    expect([brief(bills[0]!.lines), bills[0]!.totalCents]).toEqual([[['monthly_service', 0, 0, 2000], ['domestic', 2, 2, 10]], 2010]);
  });

  it('bill 1 shows period 0\'s late calls on one line naming that period; the resend is not billed again', () => {
    expect(bills[1]!.lines.map((l) => [l.kind, l.description, l.calls, l.minutes, l.amountCents])).toEqual([
      ['monthly_service', 'Monthly service', 0, 0, 2000],
      ['domestic', 'Domestic', 1, 1, 5],
      ['late_usage', 'Late usage for period 2024-01-31 to 2024-02-29', 2, 3, 20], // 2 min × 5 ¢ + 1 min × 10 ¢
    ]);
    expect(bills[1]!.lines[2]!.lateFor).toEqual(periodAt(sub(), 0));
    expect(bills[1]!.totalCents).toBe(2025);
  });

  it('bill 2 has a late line per original period, oldest first', () => {
    expect(bills[2]!.lines.map((l) => [l.kind, l.description, l.calls, l.amountCents])).toEqual([
      ['monthly_service', 'Monthly service', 0, 2000],
      ['late_usage', 'Late usage for period 2024-01-31 to 2024-02-29', 1, 5],
      ['late_usage', 'Late usage for period 2024-02-29 to 2024-03-31', 1, 199],
    ]);
    expect(bills[2]!.totalCents).toBe(2204);
  });

  it('every call is billed exactly once across the history', () => {
    const billedCalls = bills.flatMap((b) => b.lines).reduce((s, l) => s + l.calls, 0);
    expect(billedCalls).toBe(new Set(calls.map((c) => c.callId)).size - 1); // Z is not billed yet
  });

  it('refuses a history with a gap or a watermark going back', () => {
    const base = { tariff, subscriber: sub(), calls };
    expect(() => referenceBills({ ...base, bills: [{ periodIndex: 0, watermarkMs: 1 }, { periodIndex: 2, watermarkMs: 2 }] })).toThrow('bills[1].periodIndex: must follow 0, got 2');
    expect(() => referenceBills({ ...base, bills: [{ periodIndex: 0, watermarkMs: 2 }, { periodIndex: 1, watermarkMs: 1 }] })).toThrow("bills[1].watermarkMs: must not be earlier than the previous bill's");
  });
});

describe('errors name the field', () => {
  it.each([
    [{ plan: 'gold' }, [], 'plan: unknown plan "gold"'],
    [{ timeZone: 'Mars/Olympus' }, [], 'timeZone: unknown IANA time zone "Mars/Olympus"'],
    [{}, [call('+447911123456', '2024-02-10T15:00:00Z', 1000)], 'target: not a NANP number in E.164 (+1NPANXXXXXX): "+447911123456"'],
    [{}, [{ ...call('911', '2024-02-10T15:00:00Z', 0, { id: 'neg' }), endMs: ms('2024-02-10T14:00:00Z') }], 'calls[neg].endMs: must be an integer instant at or after startMs'],
    [{ subscriptionDate: '1999-06-01' }, [call('911', '1999-06-10T15:00:00Z', 1000)], 'period: no version of plan standard is in effect at 1999-06-01T04:00:00.000Z'],
  ])('%j', (over, calls, message) => {
    expect(() => referenceBill({ tariff, subscriber: sub(over), calls, periodIndex: 0, watermarkMs: ms('2030-01-01T00:00:00Z'), previousWatermarkMs: null })).toThrow(message);
  });
});

describe('the reference period arithmetic (luxon) agrees with cycles.ts', () => {
  it('for any served zone, subscription date 2012-2035 and period up to 40', () => {
    const date = fc.date({ min: new Date(Date.UTC(2012, 0, 1)), max: new Date(Date.UTC(2035, 11, 31)), noInvalidDate: true })
      .map((d) => formatLocalDate(d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate()));
    fc.assert(
      fc.property(date, fc.constantFrom(...SUPPORTED_TIME_ZONES), fc.integer({ min: 0, max: 40 }), (subscriptionDate, timeZone, k) => {
        const s = sub({ subscriptionDate, timeZone });
        const bill = referenceBill({ tariff, subscriber: s, calls: [], periodIndex: k, watermarkMs: 0, previousWatermarkMs: null });
        expect(bill.period).toEqual(periodAt(s, k));
      }),
      { numRuns: 150 },
    );
  });
});
