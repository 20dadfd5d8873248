import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ANY_DIGIT, expandDigitPattern, type DigitProduct } from './digit-pattern.ts';
import { nanpPatterns } from './nanp-table.ts';

const mask = (digits: string): number => [...digits].reduce((m, d) => m | (1 << Number(d)), 0);

const inProducts = (products: readonly DigitProduct[], s: string): boolean =>
  products.some((p) => p.length === s.length && p.every((m, i) => (m & (1 << Number(s[i]))) !== 0));

describe('expandDigitPattern', () => {
  it.each([
    ['12', [[mask('1'), mask('2')]]],
    ['\\d{2}', [[ANY_DIGIT, ANY_DIGIT]]],
    ['[2-46-9]0', [[mask('2346789'), mask('0')]]],
    ['8(?:00|33)', [[mask('8'), mask('0'), mask('0')], [mask('8'), mask('3'), mask('3')]]],
    ['(?:1|23)?4', [[mask('4')], [mask('1'), mask('4')], [mask('2'), mask('3'), mask('4')]]],
    ['5\\d{1,2}', [[mask('5'), ANY_DIGIT], [mask('5'), ANY_DIGIT, ANY_DIGIT]]],
    ['1|2', [[mask('1')], [mask('2')]]],
  ])('expands %s', (source, expected) => {
    expect(expandDigitPattern(source)).toEqual(expected);
  });

  it.each(['\\s', '[^1]', '1*', '1+', '(1)', '(?:1', '1{2,}', 'a', '[]'])('refuses the unsupported construct %s', (source) => {
    expect(() => expandDigitPattern(source)).toThrow(/unsupported construct/);
  });

  // The table builder trusts the expansion to tell it which digits matter, so
  // it must describe exactly the strings each real NANP pattern accepts.
  it('matches the same strings as RegExp for every NANP metadata pattern', () => {
    const patterns = nanpPatterns().map(({ source }) => ({
      source,
      regex: new RegExp(`^(?:${source})$`),
      products: expandDigitPattern(source),
    }));
    fc.assert(
      fc.property(
        fc.constantFrom(...patterns),
        fc.nat(),
        fc.array(fc.nat({ max: 9 }), { minLength: 12, maxLength: 12 }),
        fc.nat({ max: 11 }),
        fc.nat({ max: 9 }),
        ({ regex, products }, pick, noise, at, replacement) => {
          // A string drawn from one alternative must match...
          const product = products[pick % products.length];
          const digits = product.map((m, i) => {
            const allowed = [...Array(10).keys()].filter((d) => (m & (1 << d)) !== 0);
            return allowed[noise[i] % allowed.length];
          });
          const member = digits.join('');
          expect(regex.test(member)).toBe(true);
          expect(inProducts(products, member)).toBe(true);
          // ...and a one-digit change must be judged the same way by both.
          if (at < digits.length) digits[at] = replacement;
          const mutated = digits.join('');
          expect(inProducts(products, mutated)).toBe(regex.test(mutated));
        },
      ),
      { numRuns: 5_000 },
    );
  });
});
