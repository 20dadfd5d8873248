/** byPhoneNumber: the run's chunks are ranges of phone numbers, so its order must be the numbers' text order. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { byPhoneNumber } from './run-billing.ts';

const textOrder = <T extends { phoneNumber: string }>(xs: T[]) => [...xs].sort((a, b) => (a.phoneNumber < b.phoneNumber ? -1 : a.phoneNumber > b.phoneNumber ? 1 : 0));
const nanp = fc.tuple(fc.integer({ min: 200, max: 999 }), fc.integer({ min: 200, max: 999 }), fc.integer({ min: 0, max: 9999 }))
  .map(([npa, nxx, line]) => `+1${npa}${nxx}${String(line).padStart(4, '0')}`);

describe('byPhoneNumber', () => {
  it('orders subscribers as their numbers\' texts compare, each once, whatever order they came in', () => {
    fc.assert(fc.property(fc.uniqueArray(nanp, { maxLength: 300 }), (phones) => {
      const subs = phones.map((phoneNumber, i) => ({ phoneNumber, i }));
      const out = byPhoneNumber(subs);
      expect(out.map((s) => s.phoneNumber)).toEqual(textOrder(subs).map((s) => s.phoneNumber));
      expect(new Set(out).size).toBe(subs.length);
    }));
  });

  it('orders a catch-up\'s 300,000 subscribers (the packed keys stay exact) as their texts compare', () => {
    const phones = Array.from({ length: 300_000 }, (_, i) => `+1${String(9_999_999_999 - i * 33_331).padStart(10, '0')}`);
    const subs = phones.map((phoneNumber, i) => ({ phoneNumber, i })).sort(() => Math.random() - 0.5);
    const out = byPhoneNumber(subs);
    expect(out.map((s) => s.phoneNumber)).toEqual(textOrder(subs).map((s) => s.phoneNumber));
    expect(new Set(out).size).toBe(subs.length);
  });

  it('keeps every subscriber when a number repeats, or is not +1 and ten digits (text order then)', () => {
    const repeated = [{ phoneNumber: '+13125550100', i: 0 }, { phoneNumber: '+12125550100', i: 1 }, { phoneNumber: '+13125550100', i: 2 }];
    expect(byPhoneNumber(repeated).map((s) => s.i)).toEqual([1, 0, 2]);
    const malformed = [{ phoneNumber: '+13125550100', i: 0 }, { phoneNumber: '911', i: 1 }, { phoneNumber: '+1212555010', i: 2 }, { phoneNumber: '+12125550100', i: 3 }];
    expect(byPhoneNumber(malformed).map((s) => s.phoneNumber)).toEqual(['+1212555010', '+12125550100', '+13125550100', '911']);
  });
});
