/**
 * Expands the digit-only regular expressions of libphonenumber's metadata
 * into explicit alternatives, so the NANP table builder can see which digit
 * positions a pattern actually constrains. libphonenumber itself stays the
 * judge of every outcome; this only tells the builder where to look.
 *
 * Supported subset (everything the NANP metadata uses, checked at build):
 * digits, `\d`, `[...]` with ranges, `(?:...)`, `|`, `{n}`, `{n,m}`, `?`.
 * Anything else throws, so a metadata update that needs more fails loudly
 * instead of building a wrong table.
 */

/** One alternative: a fixed-length run of digit masks (bit d set = digit d allowed). */
export type DigitProduct = readonly number[];

export const ANY_DIGIT = 0x3ff;

// A pathological pattern would expand combinatorially; the NANP ones stay in
// the low thousands, so this only guards against a metadata surprise.
const MAX_ALTERNATIVES = 200_000;

export function expandDigitPattern(source: string): DigitProduct[] {
  let i = 0;

  const fail = (what: string): never => {
    throw new Error(`unsupported construct in digit pattern at ${i} (${what}): ${source}`);
  };

  const cross = (left: number[][], right: number[][]): number[][] => {
    if (left.length * right.length > MAX_ALTERNATIVES) fail('too many alternatives');
    const out: number[][] = [];
    for (const l of left) for (const r of right) out.push([...l, ...r]);
    return out;
  };

  const parseAlternation = (): number[][] => {
    const out = parseSequence();
    while (source[i] === '|') {
      i++;
      out.push(...parseSequence());
    }
    return out;
  };

  const parseSequence = (): number[][] => {
    let acc: number[][] = [[]];
    while (i < source.length && source[i] !== '|' && source[i] !== ')') {
      const atom = parseAtom();
      const [min, max] = parseRepeat();
      const options: number[][] = [];
      let run: number[][] = [[]];
      for (let k = 0; k <= max; k++) {
        if (k >= min) options.push(...run);
        if (k < max) run = cross(run, atom);
      }
      acc = cross(acc, options);
    }
    return acc;
  };

  const parseAtom = (): number[][] => {
    const c = source[i];
    if (c >= '0' && c <= '9') {
      i++;
      return [[1 << (c.charCodeAt(0) - 48)]];
    }
    if (c === '\\') {
      if (source[i + 1] !== 'd') fail('escape');
      i += 2;
      return [[ANY_DIGIT]];
    }
    if (c === '[') return [[parseClass()]];
    if (source.startsWith('(?:', i)) {
      i += 3;
      const inner = parseAlternation();
      if (source[i] !== ')') fail('unclosed group');
      i++;
      return inner;
    }
    return fail(`'${c}'`);
  };

  const parseClass = (): number => {
    i++; // '['
    let mask = 0;
    while (i < source.length && source[i] !== ']') {
      const from = source.charCodeAt(i) - 48;
      if (from < 0 || from > 9) fail('class member');
      if (source[i + 1] === '-' && source[i + 2] !== ']') {
        const to = source.charCodeAt(i + 2) - 48;
        if (to < from || to > 9) fail('class range');
        for (let d = from; d <= to; d++) mask |= 1 << d;
        i += 3;
      } else {
        mask |= 1 << from;
        i++;
      }
    }
    if (source[i] !== ']' || mask === 0) fail('class');
    i++;
    return mask;
  };

  const parseRepeat = (): [number, number] => {
    if (source[i] === '?') {
      i++;
      return [0, 1];
    }
    if (source[i] === '*' || source[i] === '+') fail('unbounded repeat');
    if (source[i] !== '{') return [1, 1];
    const m = /^\{(\d+)(?:,(\d+))?\}/.exec(source.slice(i));
    if (!m) return fail('repeat');
    i += m[0].length;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : Number(m[2]);
    if (max < min) fail('repeat bounds');
    return [min, max];
  };

  const result = parseAlternation();
  if (i !== source.length) fail('trailing input');
  return result;
}
