import fc from 'fast-check';
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { describe, expect, it } from 'vitest';
import { classifyCall, numberKind, parseNumber, SERVICE_CODES, TOLL_FREE_NPAS, warmUpNumbers, type ParsedNumber } from './index.ts';

const TERRITORIES = new Set(['PR', 'VI', 'GU', 'MP', 'AS']);

/**
 * libphonenumber's verdict on validity and country, in the shape parseNumber
 * reports; toll-free and premium by area code, as the tariff defines them.
 */
function reference(e164: string): ParsedNumber | 'invalid' {
  const p = parsePhoneNumberFromString(e164);
  if (!p || !p.isValid() || !p.country) return 'invalid';
  const npa = e164.slice(2, 5);
  return {
    kind: 'nanp',
    e164,
    npa: e164.slice(2, 5),
    country: TERRITORIES.has(p.country) ? 'US' : p.country,
    region: p.country,
    tollFree: TOLL_FREE_NPAS.has(npa),
    premium: npa === '900',
  };
}

function agreesWithLibphonenumber(e164: string): void {
  const ours = parseNumber(e164);
  const theirs = reference(e164);
  if (theirs === 'invalid') expect(ours.kind, e164).toBe('invalid');
  else expect(ours, e164).toEqual(theirs);
}

const nanp = (npa: string, country: string, region: string, tollFree = false, premium = false) => ({
  kind: 'nanp',
  npa,
  country,
  region,
  tollFree,
  premium,
});

const tenDigits = fc.array(fc.nat({ max: 9 }), { minLength: 10, maxLength: 10 }).map((d) => d.join(''));
const geographic = tenDigits
  .map((d) => `+1${d}`)
  .filter((s) => {
    const p = parseNumber(s);
    return p.kind === 'nanp' && !p.tollFree && !p.premium;
  });

describe('parseNumber', () => {
  it.each([
    ['+14165550100', nanp('416', 'CA', 'CA')],
    ['+16045550199', nanp('604', 'CA', 'CA')],
    ['+18765550100', nanp('876', 'JM', 'JM')],
    ['+12125550100', nanp('212', 'US', 'US')],
    ['+17875550100', nanp('787', 'US', 'PR')],
    ['+13405550100', nanp('340', 'US', 'VI')],
    ['+16715550100', nanp('671', 'US', 'GU')],
    ['+16705550100', nanp('670', 'US', 'MP')],
    ['+18095550100', nanp('809', 'DO', 'DO')],
    ['+12462270100', nanp('246', 'BB', 'BB')],
    ['+18766060123', nanp('876', 'JM', 'JM')],
    ['+18005550100', nanp('800', 'US', 'US', true)],
    ['+18885550100', nanp('888', 'US', 'US', true)],
    ['+19005550100', nanp('900', 'US', 'US', false, true)],
    // Toll-free and premium go by area code (the tariff's rule), whatever type
    // libphonenumber gives one exchange: DO 800-14X is toll-free because of 800;
    // BB 246-976 (premium to libphonenumber) is an ordinary Barbados number.
    ['+18001412345', nanp('800', 'DO', 'DO', true)],
    ['+12469760100', nanp('246', 'BB', 'BB')],
    ['+12423000100', nanp('242', 'BS', 'BS')],
    ['+13459760100', nanp('345', 'KY', 'KY')],
  ])('%s is a valid NANP number', (e164, expected) => {
    const parsed = parseNumber(e164);
    expect(parsed).toEqual({ ...expected, e164 });
    expect(parsed).toEqual(reference(e164));
  });

  it.each([...TOLL_FREE_NPAS])('toll-free NPA %s is toll-free in the US', (npa) => {
    expect(parseNumber(`+1${npa}5550100`)).toEqual({ ...nanp(npa, 'US', 'US', true), e164: `+1${npa}5550100` });
  });

  it.each([...SERVICE_CODES])('service code %s', (code) => {
    expect(parseNumber(code)).toEqual({ kind: 'service_code', code });
  });

  it.each([
    ['', 'is required'],
    ['+442071838750', 'not a North American (NANP) number'],
    ['+525512345678', 'not a North American (NANP) number'],
    ['+8765550100', 'not a North American (NANP) number'],
    ['2125550100', 'must be E.164 +1NPANXXXXXX'],
    ['12125550100', 'must be E.164 +1NPANXXXXXX'],
    ['+1 212 555 0100', 'must be E.164 +1NPANXXXXXX'],
    ['+1-212-555-0100', 'must be E.164 +1NPANXXXXXX'],
    ['+1212555010', 'must be E.164 +1NPANXXXXXX'],
    ['+121255501000', 'must be E.164 +1NPANXXXXXX'],
    ['+1212555010a', 'must be E.164 +1NPANXXXXXX'],
    [' +12125550100', 'must be E.164 +1NPANXXXXXX'],
    ['+', 'must be E.164 +1NPANXXXXXX'],
    ['+1', 'must be E.164 +1NPANXXXXXX'],
    ['tel:+12125550100', 'must be E.164 +1NPANXXXXXX'],
    ['123', 'not a service code (211, 311, 411, 511, 611, 711, 811, 911, 988); numbers must be E.164 +1NPANXXXXXX'],
    ['+1911', 'must be E.164 +1NPANXXXXXX'],
    ['+19995550100', 'unassigned area code 999'],
    ['+11234567890', 'invalid area code 123: an area code cannot start with 0 or 1'],
    ['+10125550100', 'invalid area code 012: an area code cannot start with 0 or 1'],
    ['+12120550100', 'not a valid number in area code 212 (exchange 055)'],
    ['+12125550100'.replace('555', '155'), 'not a valid number in area code 212 (exchange 155)'],
    ['+12465550100', 'not a valid number in area code 246 (exchange 555)'],
    ['+16845550100', 'not a valid number in area code 684 (exchange 555)'],
    // Validity decided by the digit after the exchange.
    ['+18766061123', 'not a valid number in area code 876 (exchange 606)'],
    ['+12465215000', 'not a valid number in area code 246 (exchange 521)'],
  ])('%j is invalid: %s', (input, reason) => {
    expect(parseNumber(input)).toEqual({ kind: 'invalid', reason });
  });

  // 555-0100..0199 are the fictional numbers reserved for examples; whether
  // each is "valid" is libphonenumber's call per area code, and we follow it.
  it.each(['212', '416', '604', '787', '876', '246', '684', '809', '800', '900'])('555-01XX in area code %s follows libphonenumber', (npa) => {
    for (let xx = 0; xx < 100; xx++) agreesWithLibphonenumber(`+1${npa}55501${String(xx).padStart(2, '0')}`);
  });

  it('agrees with libphonenumber-js/max on random +1 numbers (validity, country, region) and the area-code rule for toll-free and premium', () => {
    fc.assert(
      fc.property(tenDigits, (d) => agreesWithLibphonenumber(`+1${d}`)),
      { numRuns: 10_000 },
    );
  });

  // Uniform numbers rarely reach the Caribbean and Pacific area codes, whose
  // validity depends on the exchange and sometimes on the next digit.
  it('agrees with libphonenumber-js/max where validity depends on the exchange', () => {
    const deep = ['242', '246', '264', '268', '284', '305', '340', '345', '441', '473', '505', '523', '524', '649', '658', '664', '670', '671', '684', '721', '758', '767', '784', '787', '800', '809', '829', '849', '868', '869', '876', '939'];
    const nxx = fc.oneof(
      fc.array(fc.nat({ max: 9 }), { minLength: 7, maxLength: 7 }).map((d) => d.join('')),
      fc.constantFrom('606', '976', '521', '300', '014', '141', '090').chain((x) =>
        fc.array(fc.nat({ max: 9 }), { minLength: 4, maxLength: 4 }).map((d) => x + d.join('')),
      ),
    );
    fc.assert(
      fc.property(fc.constantFrom(...deep), nxx, (npa, rest) => agreesWithLibphonenumber(`+1${npa}${rest}`)),
      { numRuns: 10_000 },
    );
  });

  it('never throws and rejects anything that is not +1 and ten digits or a service code', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 16 }), (s) => {
        const parsed = parseNumber(s);
        if (!/^\+1\d{10}$/.test(s) && !SERVICE_CODES.has(s)) expect(parsed.kind).toBe('invalid');
      }),
      { numRuns: 5_000 },
    );
  });

  it('builds its table once, asking libphonenumber a few hundred questions at most', () => {
    const stats = warmUpNumbers();
    expect(stats.libphonenumberCalls).toBeGreaterThan(20);
    expect(stats.libphonenumberCalls).toBeLessThan(500);
    expect(warmUpNumbers()).toBe(stats);
  });
});

describe('classifyCall', () => {
  const US = '+12125550100';
  const US2 = '+13125550100';
  const PR = '+17875550100';
  const CA = '+14165550100';
  const CA2 = '+16045550199';
  const JM = '+18765550100';
  const DO = '+18095550100';

  it.each([
    [US, US2, 'US', 'US', 'domestic'],
    [US, PR, 'US', 'US', 'domestic'],
    [PR, US, 'US', 'US', 'domestic'],
    [CA, CA2, 'CA', 'CA', 'domestic'],
    [JM, JM, 'JM', 'JM', 'domestic'],
    [US, CA, 'US', 'CA', 'cross_border'],
    [CA, PR, 'CA', 'US', 'cross_border'],
    [US, JM, 'US', 'JM', 'nanp_international'],
    [JM, US, 'JM', 'US', 'nanp_international'],
    [JM, DO, 'JM', 'DO', 'nanp_international'],
    [CA, JM, 'CA', 'JM', 'nanp_international'],
    [US, '+18005550100', 'US', 'US', 'toll_free'],
    [CA, '+18885550100', 'CA', 'US', 'toll_free'],
    [JM, '+19005550100', 'JM', 'US', 'premium'],
    [US, '911', 'US', '', 'service_code'],
    [CA, '988', 'CA', '', 'service_code'],
  ])('%s → %s is %s→%s %s', (source, target, sourceCountry, targetCountry, callClass) => {
    expect(classifyCall(source, target)).toEqual({ ok: true, sourceCountry, targetCountry, callClass });
  });

  it.each([
    ['', US, 'source_number', 'is required'],
    [US, '', 'target_number', 'is required'],
    ['911', US, 'source_number', 'a service code (911) cannot place calls'],
    ['+18005550100', US, 'source_number', 'a toll-free number cannot place calls'],
    ['+18001412345', US, 'source_number', 'a toll-free number cannot place calls'],
    ['+19005550100', US, 'source_number', 'a premium-rate number cannot place calls'],
    ['+442071838750', US, 'source_number', 'not a North American (NANP) number'],
    ['2125550100', US, 'source_number', 'must be E.164 +1NPANXXXXXX'],
    ['+19995550100', US, 'source_number', 'unassigned area code 999'],
    [US, '+442071838750', 'target_number', 'not a North American (NANP) number'],
    [US, '+12120550100', 'target_number', 'not a valid number in area code 212 (exchange 055)'],
    [US, '123', 'target_number', 'not a service code (211, 311, 411, 511, 611, 711, 811, 911, 988); numbers must be E.164 +1NPANXXXXXX'],
    // A bad source is reported first, whatever the target.
    ['+1212', '+44', 'source_number', 'must be E.164 +1NPANXXXXXX'],
  ])('%j → %j is rejected on %s: %s', (source, target, field, reason) => {
    expect(classifyCall(source, target)).toEqual({ ok: false, field, reason });
  });

  it('is domestic exactly when both geographic numbers are in the same country, and symmetric', () => {
    fc.assert(
      fc.property(geographic, geographic, (a, b) => {
        const pa = parseNumber(a);
        const pb = parseNumber(b);
        if (pa.kind !== 'nanp' || pb.kind !== 'nanp') throw new Error('generator yields valid numbers');
        const there = classifyCall(a, b);
        const back = classifyCall(b, a);
        if (!there.ok || !back.ok) throw new Error(`geographic calls classify: ${JSON.stringify([there, back])}`);
        expect([there.sourceCountry, there.targetCountry]).toEqual([pa.country, pb.country]);
        expect(there.callClass === 'domestic').toBe(pa.country === pb.country);
        const usCa = new Set([pa.country, pb.country]);
        expect(there.callClass === 'cross_border').toBe(usCa.size === 2 && usCa.has('US') && usCa.has('CA'));
        expect(back.callClass).toBe(there.callClass);
      }),
      { numRuns: 2_000 },
    );
  });

  it('classifies every service code as service_code from any valid source', () => {
    fc.assert(
      fc.property(geographic, fc.constantFrom(...SERVICE_CODES), (source, code) => {
        const parsed = parseNumber(source);
        if (parsed.kind !== 'nanp') throw new Error('generator yields valid numbers');
        expect(classifyCall(source, code)).toEqual({
          ok: true,
          sourceCountry: parsed.country,
          targetCountry: '',
          callClass: 'service_code',
        });
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('numberKind', () => {
  it('says what parseNumber says, for any string', () => {
    const anyNumber = fc.oneof(
      tenDigits.map((d) => `+1${d}`),
      fc.constantFrom(...SERVICE_CODES, '912', '000', '', '+44', '+4420794600000', '2125550100'),
      fc.string({ maxLength: 14 }),
    );
    fc.assert(fc.property(anyNumber, (s) => { expect(numberKind(s)).toBe(parseNumber(s).kind); }), { numRuns: 5000 });
  });
});
