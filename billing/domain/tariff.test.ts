import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import {
  CHARGE_UNITS_PER_CENT, DEFAULT_TARIFF_PATH, LINE_KINDS, TariffError, lateUsageDescription, billableSeconds, callChargeUnits, displayMinutes,
  lineAmountCents, loadTariff, parseTariff, planOf, tariffVersionAt,
} from './tariff.ts';

const repoTariff = () => JSON.parse(readFileSync(DEFAULT_TARIFF_PATH, 'utf8')) as Record<string, any>;
const problemsOf = (raw: unknown): readonly string[] => {
  try {
    parseTariff(raw);
  } catch (e) {
    if (e instanceof TariffError) return e.problems;
    throw e;
  }
  throw new Error('expected the tariff to be refused');
};

describe('the repository tariff', () => {
  const tariff = loadTariff();

  it('pins the standard plan: USD, 2000 ¢ a month, the per-class rates of the product brief, 60 s increments', () => {
    expect(tariff.defaultPlan).toBe('standard');
    const std = planOf(tariff, 'standard');
    expect([std.currency, std.versions.length]).toEqual(['USD', 1]);
    const v = std.versions[0]!;
    expect([v.monthlyCents, v.monthlyDescription]).toEqual([2000, 'Monthly service']);
    expect(Object.fromEntries(Object.entries(v.classes).map(([k, c]) => [k, [c.rateMilliCentsPerMinute / 1000, c.incrementSeconds, c.description]]))).toEqual({
      domestic: [5, 60, 'Domestic'],
      cross_border: [10, 60, 'Cross-border'],
      nanp_international: [45, 60, 'NANP international'],
      premium: [199, 60, 'Premium (pay-per-call)'],
      toll_free: [0, 60, 'Toll-free'],
      service_code: [0, 60, 'Service codes'],
    });
  });

  it('has a saver plan with 6 s increments, a fractional-cent rate and a dated rate change', () => {
    const saver = planOf(tariff, 'saver');
    expect(saver.versions.map((v) => [v.effectiveFrom, v.classes.domestic.rateMilliCentsPerMinute, v.classes.domestic.incrementSeconds])).toEqual([
      ['2000-01-01T00:00:00Z', 2500, 6],
      ['2025-07-01T00:00:00-04:00', 2750, 6],
    ]);
    expect(saver.versions[1]!.effectiveFromMs).toBe(Date.parse('2025-07-01T04:00:00Z'));
  });

  it('is frozen all the way down', () => {
    const v = planOf(tariff, 'standard').versions[0]!;
    expect(Object.isFrozen(tariff) && Object.isFrozen(tariff.plans) && Object.isFrozen(v) && Object.isFrozen(v.classes.domestic)).toBe(true);
    expect(() => { (v.classes.domestic as { rateMilliCentsPerMinute: number }).rateMilliCentsPerMinute = 1; }).toThrow(TypeError);
  });

  it('refuses an unknown plan naming the known ones', () => {
    expect(() => planOf(tariff, 'gold')).toThrow('plan: unknown plan "gold"; known plans: standard, saver');
    expect(() => planOf(tariff, 'constructor')).toThrow('plan: unknown plan "constructor"');
  });
});

describe('tariffVersionAt: a change applies to calls starting at or after it', () => {
  const saver = planOf(loadTariff(), 'saver');
  const change = Date.parse('2025-07-01T04:00:00Z');
  it.each([
    [change - 1, 2500],
    [change, 2750],
    [change + 86_400_000, 2750],
    [Date.parse('2000-01-01T00:00:00Z'), 2500],
  ])('at %i → %i milli-cents/min', (at, rate) => {
    expect(tariffVersionAt(saver, at)?.classes.domestic.rateMilliCentsPerMinute).toBe(rate);
  });
  it('is undefined before the first version', () => {
    expect(tariffVersionAt(saver, Date.parse('1999-12-31T23:59:59.999Z'))).toBeUndefined();
  });
});

describe('rating helpers', () => {
  it.each([
    [0, 60, 0], [1, 60, 60], [59_999, 60, 60], [60_000, 60, 60], [60_001, 60, 120], [125_000, 60, 180],
    [0, 6, 0], [1, 6, 6], [6_000, 6, 6], [6_001, 6, 12], [90_000, 6, 90], [90_500, 6, 96], [86_400_000, 6, 86_400],
  ])('billableSeconds(%i ms, %i s) = %i', (ms, inc, secs) => {
    expect(billableSeconds(ms, inc)).toBe(secs);
  });

  it.each([
    [-1, 60, 'durationMs: must be a non-negative integer, got -1'],
    [1.5, 60, 'durationMs: must be a non-negative integer, got 1.5'],
    [1000, 0, 'incrementSeconds: must be a positive integer, got 0'],
  ])('billableSeconds(%s, %s) refuses: %s', (ms, inc, message) => {
    expect(() => billableSeconds(ms, inc)).toThrow(message);
  });

  it.each([
    [0, 0], [29_999, 0], [30_000, 1], [59_999, 1], [60_000, 1], [89_999, 1], [90_000, 2], [150_000, 3],
    // 1 min at 2.5 ¢ = 2.5 ¢ → 3 ¢ (half up); 6 s at 2.5 ¢ = 0.25 ¢ → 0 ¢
    [callChargeUnits(60, 2500), 3], [callChargeUnits(6, 2500), 0],
    // 12 s at 7.25 ¢/min = 1.45 ¢ → 1 ¢; 18 s → 2.175 ¢ → 2 ¢
    [callChargeUnits(12, 7250), 1], [callChargeUnits(18, 7250), 2],
  ])('lineAmountCents(%i) = %i', (units, cents) => {
    expect(lineAmountCents(units)).toBe(cents);
    expect(lineAmountCents(BigInt(units))).toBe(cents);
  });

  it('rounds a sum beyond 2^53 exactly with BigInt', () => {
    const big = 2n ** 60n * BigInt(CHARGE_UNITS_PER_CENT) + 30_000n;
    expect(lineAmountCents(big)).toBe(Number(2n ** 60n + 1n));
    expect(() => lineAmountCents(-1)).toThrow('sumChargeUnits: must not be negative, got -1');
  });

  it('half up: the amount is the nearest cent, .5 going up (property)', () => {
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: 10n ** 15n }), (units) => {
      const cents = lineAmountCents(units);
      const diff = units - BigInt(cents) * 60_000n; // in (-30000, 30000]... half goes up
      expect(diff >= -30_000n && diff < 30_000n).toBe(true);
    }));
  });

  it.each([[0, 0], [6, 1], [60, 1], [61, 2], [120, 2], [3_600, 60]])('displayMinutes(%i s) = %i', (s, m) => {
    expect(displayMinutes(s)).toBe(m);
  });
});

describe('validation reports every problem with its path', () => {
  it('lists all problems at once', () => {
    const t = repoTariff();
    const v = t.plans.standard.versions[0];
    v.classes.domestic.rateMilliCentsPerMinute = -5;
    v.classes.cross_border.incrementSeconds = 0;
    v.classes.premium.rateMilliCentsPerMinute = 1.5;
    delete v.classes.toll_free;
    v.classes.satellite = { rateMilliCentsPerMinute: 1, description: 'x' };
    v.monthlyCents = '2000';
    v.effectiveFrom = '2000-02-30T00:00:00Z';
    t.plans.saver.currency = 'usd';
    t.plans.saver.versions[1].effectiveFrom = '1999-01-01T00:00:00Z';
    t.plans.saver.versions[0].classes.domestic.colour = 'blue';
    t.plans['Gold!'] = { name: '', currency: 'USD', versions: [] };
    t.defaultPlan = 'platinum';
    t.extra = 1;
    expect(problemsOf(t)).toEqual([
      'extra: unknown field',
      'plans.standard.versions[0].effectiveFrom: must be an RFC 3339 instant with an offset, e.g. 2025-07-01T00:00:00-04:00',
      'plans.standard.versions[0].monthlyCents: must be a non-negative integer',
      'plans.standard.versions[0].classes.satellite: unknown call class; expected one of domestic, cross_border, nanp_international, premium, toll_free, service_code',
      'plans.standard.versions[0].classes.domestic.rateMilliCentsPerMinute: must be a non-negative integer at most 1000000000',
      'plans.standard.versions[0].classes.cross_border.incrementSeconds: must be an integer 1-3600',
      'plans.standard.versions[0].classes.premium.rateMilliCentsPerMinute: must be a non-negative integer at most 1000000000',
      'plans.standard.versions[0].classes.toll_free: is required',
      'plans.saver.currency: must be an ISO 4217 code such as USD',
      'plans.saver.versions[0].classes.domestic.colour: unknown field',
      'plans.saver.versions[1].effectiveFrom: must be later than versions[0].effectiveFrom (2000-01-01T00:00:00Z)',
      'plans.Gold!: plan id must be lowercase letters, digits and _ (at most 32, starting with a letter)',
      'plans.Gold!.name: must be a non-empty string',
      'plans.Gold!.versions: must be a non-empty array',
      'defaultPlan: names no plan in plans: "platinum"',
    ]);
  });

  it('defaults incrementSeconds to 60', () => {
    const t = repoTariff();
    delete t.plans.standard.versions[0].classes.domestic.incrementSeconds;
    expect(parseTariff(t).plans.standard!.versions[0]!.classes.domestic.incrementSeconds).toBe(60);
  });

  it.each([
    [null, ['(root): must be a JSON object']],
    [{ formatVersion: 2, plans: {}, defaultPlan: 'x' }, ['formatVersion: must be 1', 'plans: must be an object with at least one plan', 'defaultPlan: names no plan in plans: "x"']],
    [{ formatVersion: 1, plans: { p: { name: 'P', currency: 'USD', versions: [7] } } }, ['plans.p.versions[0]: must be an object', 'defaultPlan: must name a plan']],
  ])('refuses %j', (raw, problems) => {
    expect(problemsOf(raw)).toEqual(problems);
  });

  it('loadTariff names the file and the reason; the error is an invalid DomainError', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tariff-'));
    try {
      const file = path.join(dir, 'tariff.json');
      writeFileSync(file, '{ "formatVersion": 1, ');
      expect(() => loadTariff(file)).toThrow(`tariff ${file} is invalid:\n  - not valid JSON:`);
      expect(() => loadTariff(path.join(dir, 'missing.json'))).toThrow(/cannot read the file: ENOENT/);
      try {
        loadTariff(file);
      } catch (e) {
        expect([(e as TariffError).kind, (e as TariffError).code]).toEqual(['invalid', 'INVALID_TARIFF']);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('line kinds', () => {
  it('are the monthly fee, the six classes in bill order, then late usage', () => {
    expect(LINE_KINDS).toEqual(['monthly_service', 'domestic', 'cross_border', 'nanp_international', 'premium', 'toll_free', 'service_code', 'late_usage']);
    expect(lateUsageDescription({ startLocal: '2024-01-31', endLocal: '2024-02-29' })).toBe('Late usage for period 2024-01-31 to 2024-02-29');
  });
});
