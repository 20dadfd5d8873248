/**
 * Builds the NANP lookup table once from libphonenumber-js/max.
 *
 * libphonenumber costs ~50 µs per number (it compiles regular expressions and
 * tries up to 25 NANP countries in turn), far too slow for ingest. Its answer
 * for a +1 number depends only on which metadata patterns the 10 national
 * digits match, so the builder:
 *   1. expands every NANP pattern into digit alternatives (digit-pattern.ts);
 *   2. grows a digit trie, branching at a position only while some pattern
 *      that can still match constrains that position or a later one;
 *   3. asks libphonenumber once per distinct set of matching patterns (a few
 *      hundred questions) and stores the answer in the trie's leaves.
 * The hot path then walks at most 7 array entries. Agreement with
 * libphonenumber is checked by property tests over random numbers.
 */
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import metadata from 'libphonenumber-js/metadata.max.json';
import { ANY_DIGIT, expandDigitPattern } from './digit-pattern.ts';

export interface Outcome {
  readonly valid: boolean;
  /** libphonenumber's region, e.g. 'PR'; '' when invalid. */
  readonly region: string;
  /** Billing country: US territories folded into 'US'; '' when invalid. */
  readonly country: string;
  readonly tollFree: boolean;
  readonly premium: boolean;
}

export interface NanpTable {
  /**
   * Node n's children live at [n*10, n*10+9], indexed by the next digit.
   * A value v >= 0 is a child node; v < 0 is a leaf holding outcome ~v.
   * The root is node 0, keyed by the first digit after +1.
   */
  readonly trie: Int32Array;
  readonly outcomes: readonly Outcome[];
  /** By NPA (0..999): 1 when at least one number in the area code is valid. */
  readonly npaAssigned: Uint8Array;
  readonly stats: { nodes: number; leaves: number; libphonenumberCalls: number; buildMs: number };
}

/** US territories with their own libphonenumber region; billed as the US. */
export const US_TERRITORIES: ReadonlySet<string> = new Set(['PR', 'VI', 'GU', 'MP', 'AS']);

const DIGITS = 10;

interface Alternative {
  readonly masks: readonly number[];
  readonly patternId: number;
  /** Last position whose mask is narrower than any digit; -1 when none. */
  readonly lastConstrained: number;
}

// Indexes into libphonenumber's compressed per-country metadata (format v4,
// see node_modules/libphonenumber-js/source/metadata.js): 2 = national number
// pattern, 10 = leading digits, 11 = type patterns as [pattern, lengths?].
const NATIONAL_PATTERN = 2;
const LEADING_DIGITS = 10;
const TYPES = 11;

/** Every pattern libphonenumber consults for a +1 number, in metadata order. */
export function nanpPatterns(): Array<{ source: string; prefixOnly: boolean }> {
  const countries = metadata.country_calling_codes['1'];
  if (!countries || countries.length === 0) throw new Error('libphonenumber metadata has no +1 countries');
  const out: Array<{ source: string; prefixOnly: boolean }> = [];
  for (const code of countries) {
    const plan = (metadata.countries as Record<string, unknown[] | undefined>)[code];
    if (!Array.isArray(plan) || typeof plan[NATIONAL_PATTERN] !== 'string') {
      throw new Error(`libphonenumber metadata for ${code} is not in the expected format`);
    }
    out.push({ source: plan[NATIONAL_PATTERN] as string, prefixOnly: false });
    if (typeof plan[LEADING_DIGITS] === 'string' && plan[LEADING_DIGITS]) {
      // Matched with search() === 0: a prefix test, the rest is free.
      out.push({ source: plan[LEADING_DIGITS] as string, prefixOnly: true });
    }
    const types = plan[TYPES];
    if (Array.isArray(types)) {
      for (const t of types) {
        if (Array.isArray(t) && typeof t[0] === 'string' && t[0] !== '') out.push({ source: t[0], prefixOnly: false });
      }
    }
  }
  return out;
}

function alternatives(): Alternative[] {
  const out: Alternative[] = [];
  nanpPatterns().forEach(({ source, prefixOnly }, patternId) => {
    for (const product of expandDigitPattern(source)) {
      if (product.length > DIGITS || (!prefixOnly && product.length !== DIGITS)) continue;
      const masks = [...product];
      while (masks.length < DIGITS) masks.push(ANY_DIGIT);
      let lastConstrained = -1;
      masks.forEach((m, pos) => {
        if (m !== ANY_DIGIT) lastConstrained = pos;
      });
      out.push({ masks, patternId, lastConstrained });
    }
  });
  return out;
}

function ask(nationalDigits: string): Outcome {
  const parsed = parsePhoneNumberFromString(`+1${nationalDigits}`);
  if (!parsed || !parsed.isValid() || !parsed.country) {
    return { valid: false, region: '', country: '', tollFree: false, premium: false };
  }
  const type = parsed.getType();
  const region = parsed.country;
  return {
    valid: true,
    region,
    country: US_TERRITORIES.has(region) ? 'US' : region,
    tollFree: type === 'TOLL_FREE',
    premium: type === 'PREMIUM_RATE',
  };
}

export function buildNanpTable(): NanpTable {
  const started = performance.now();
  const outcomes: Outcome[] = [];
  const outcomeIds = new Map<string, number>();
  const bySignature = new Map<string, number>();
  const cells: number[] = [];
  let libphonenumberCalls = 0;

  const outcomeId = (o: Outcome): number => {
    const key = `${o.valid}|${o.region}|${o.tollFree}|${o.premium}`;
    let id = outcomeIds.get(key);
    if (id === undefined) {
      id = outcomes.length;
      outcomes.push(Object.freeze(o));
      outcomeIds.set(key, id);
    }
    return id;
  };

  // Every alternative still compatible at a leaf matches all its completions,
  // so the set of their patterns decides libphonenumber's answer. A leading
  // '1' is part of the signature too: libphonenumber strips it as a national
  // prefix before matching.
  const leaf = (prefix: string, alive: readonly Alternative[]): number => {
    const ids = [...new Set(alive.map((a) => a.patternId))].sort((a, b) => a - b);
    const signature = `${prefix[0] === '1'}:${ids.join(',')}`;
    let id = bySignature.get(signature);
    if (id === undefined) {
      libphonenumberCalls++;
      id = outcomeId(ask(prefix.padEnd(DIGITS, '0')));
      bySignature.set(signature, id);
    }
    return ~id;
  };

  // Returns a cell value: a node index, or ~outcome for a leaf.
  const grow = (prefix: string, alive: readonly Alternative[]): number => {
    const depth = prefix.length;
    // The root always branches: the leading '1' rule lives at position 0.
    if (depth > 0 && (depth === DIGITS || !alive.some((a) => a.lastConstrained >= depth))) {
      return leaf(prefix, alive);
    }
    const node = cells.length / DIGITS;
    for (let d = 0; d < DIGITS; d++) cells.push(0);
    let same = true;
    for (let d = 0; d < DIGITS; d++) {
      const next = alive.filter((a) => (a.masks[depth] & (1 << d)) !== 0);
      const cell = grow(prefix + d, next);
      cells[node * DIGITS + d] = cell;
      if (cell >= 0 || cell !== cells[node * DIGITS]) same = false;
    }
    // Ten identical leaves are one leaf; the node was the last one allocated.
    if (same && node > 0 && cells.length === (node + 1) * DIGITS) {
      const only = cells[node * DIGITS];
      cells.length = node * DIGITS;
      return only;
    }
    return node;
  };

  grow('', alternatives());
  const trie = Int32Array.from(cells);

  const npaAssigned = new Uint8Array(1000);
  const anyValid = (cell: number): boolean => {
    if (cell < 0) return outcomes[~cell].valid;
    for (let d = 0; d < DIGITS; d++) if (anyValid(trie[cell * DIGITS + d])) return true;
    return false;
  };
  for (let npa = 0; npa < 1000; npa++) {
    let cell = 0;
    for (const ch of String(npa).padStart(3, '0')) {
      cell = cell < 0 ? cell : trie[cell * DIGITS + (ch.charCodeAt(0) - 48)];
    }
    npaAssigned[npa] = anyValid(cell) ? 1 : 0;
  }

  let leaves = 0;
  for (const c of trie) if (c < 0) leaves++;
  return {
    trie,
    outcomes,
    npaAssigned,
    stats: { nodes: trie.length / DIGITS, leaves, libphonenumberCalls, buildMs: performance.now() - started },
  };
}
