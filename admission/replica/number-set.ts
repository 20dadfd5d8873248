/**
 * A compact set of NANP numbers (+1NPANXXXXXX) for the admission replica:
 * about 4 bytes per number where a JS Set of strings takes ~60–100.
 *
 * The number is split by its area code (NPA, 1,000 partitions) and the
 * remaining seven digits (< 10^7, fits a uint32) are kept in one exactly
 * sized, sorted Uint32Array per NPA; a lookup is a binary search (≤ 23 steps
 * even with every number in one NPA). Changes land first in a small pending
 * map that overrides the arrays and is merged into them in bulk (only the
 * touched NPAs are rebuilt), so a burst of changes never rebuilds an array
 * per change and a merge never copies the whole set.
 */

const NPAS = 1000;
const LINE = 10_000_000;
const EMPTY = new Uint32Array(0);

/** Pending changes merged automatically past this many (bounded memory and lookup cost). */
export const DEFAULT_PENDING_LIMIT = 4096;

/**
 * The number's key, npa * 10^7 + line (an exact integer below 2^34), or -1
 * when `s` is not "+1" followed by ten digits.
 */
export function numberKey(s: string): number {
  if (s.length !== 12 || s.charCodeAt(0) !== 43 || s.charCodeAt(1) !== 49) return -1;
  let k = 0;
  for (let i = 2; i < 12; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    k = k * 10 + d;
  }
  return k;
}

export const keyToNumber = (k: number): string => `+1${String(k).padStart(10, '0')}`;

function contains(a: Uint32Array, x: number): boolean {
  let lo = 0;
  let hi = a.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = a[mid]!;
    if (v < x) lo = mid + 1;
    else if (v > x) hi = mid - 1;
    else return true;
  }
  return false;
}

export class NumberSet {
  readonly #parts: Uint32Array[];
  /** key → present (true) or absent (false), overriding #parts until merged. */
  readonly #pending = new Map<number, boolean>();
  #size: number;
  readonly #pendingLimit: number;

  /** Use NumberSetBuilder or NumberSet.of(); parts must be sorted and duplicate-free. */
  constructor(parts: Uint32Array[], size: number, pendingLimit = DEFAULT_PENDING_LIMIT) {
    if (parts.length !== NPAS) throw new RangeError(`NumberSet needs ${NPAS} partitions, got ${parts.length}`);
    this.#parts = parts;
    this.#size = size;
    this.#pendingLimit = pendingLimit;
  }

  static empty(pendingLimit?: number): NumberSet {
    return new NumberSet(new Array<Uint32Array>(NPAS).fill(EMPTY), 0, pendingLimit);
  }

  static of(numbers: Iterable<string>): NumberSet {
    const b = new NumberSetBuilder();
    for (const n of numbers) b.add(n);
    return b.build();
  }

  get size(): number { return this.#size; }

  /** Changes not merged into the arrays yet. */
  get pending(): number { return this.#pending.size; }

  /** By key (numberKey); a negative key is never present. */
  hasKey(k: number): boolean {
    if (k < 0) return false;
    const npa = Math.floor(k / LINE);
    return this.hasParts(npa, k - npa * LINE);
  }

  /**
   * The hot path: area code (0–999) and line (0–9,999,999) as small
   * integers, so nothing is boxed; the pending map is consulted only when
   * it holds anything.
   */
  hasParts(npa: number, line: number): boolean {
    if (this.#pending.size !== 0) {
      const p = this.#pending.get(npa * LINE + line);
      if (p !== undefined) return p;
    }
    return contains(this.#parts[npa]!, line);
  }

  has(number: string): boolean { return this.hasKey(numberKey(number)); }

  /** False when the number is malformed or already present. */
  add(number: string): boolean { return this.#set(numberKey(number), true); }

  /** False when the number is malformed or absent. */
  delete(number: string): boolean { return this.#set(numberKey(number), false); }

  #set(k: number, present: boolean): boolean {
    if (k < 0 || this.hasKey(k) === present) return false;
    this.#pending.set(k, present);
    this.#size += present ? 1 : -1;
    if (this.#pending.size >= this.#pendingLimit) this.compact();
    return true;
  }

  /** Merges the pending changes into the arrays of the NPAs they touch. */
  compact(): void {
    if (this.#pending.size === 0) return;
    const byNpa = new Map<number, { add: number[]; del: Set<number> }>();
    for (const [k, present] of this.#pending) {
      const npa = Math.floor(k / LINE);
      const line = k - npa * LINE;
      // A number added then removed (or the reverse) before a merge leaves the array as it was.
      if (contains(this.#parts[npa]!, line) === present) continue;
      let g = byNpa.get(npa);
      if (!g) byNpa.set(npa, (g = { add: [], del: new Set() }));
      if (present) g.add.push(line);
      else g.del.add(line);
    }
    this.#pending.clear();
    for (const [npa, g] of byNpa) {
      const old = this.#parts[npa]!;
      const add = Uint32Array.from(g.add).sort();
      const out = new Uint32Array(old.length - g.del.size + add.length);
      let i = 0;
      let j = 0;
      let o = 0;
      while (i < old.length || j < add.length) {
        if (j >= add.length || (i < old.length && old[i]! < add[j]!)) {
          const v = old[i++]!;
          if (!g.del.has(v)) out[o++] = v;
        } else {
          out[o++] = add[j++]!;
        }
      }
      this.#parts[npa] = out.length === 0 ? EMPTY : out;
    }
  }

  /** Bytes held: the arrays, plus ~64 per pending change (Map entry). */
  bytes(): number {
    let b = 0;
    for (const p of this.#parts) b += p.byteLength;
    return b + this.#pending.size * 64;
  }

  /** Every number, ascending (tests and debugging; not for the hot path). */
  *[Symbol.iterator](): IterableIterator<string> {
    const all: number[] = [];
    for (let npa = 0; npa < NPAS; npa++) {
      for (const line of this.#parts[npa]!) {
        const k = npa * LINE + line;
        if (this.#pending.get(k) !== false) all.push(k);
      }
    }
    for (const [k, present] of this.#pending) if (present && !contains(this.#parts[Math.floor(k / LINE)]!, k % LINE)) all.push(k);
    all.sort((a, b) => a - b);
    for (const k of all) yield keyToNumber(k);
  }
}

/**
 * Collects numbers (in any order, duplicates allowed) into growable
 * per-NPA buffers, then sorts and trims them into a NumberSet. Peak memory
 * while building is about three times the result's (doubling buffers plus
 * the exact-size copies); the buffers are garbage once build() returns.
 */
export class NumberSetBuilder {
  readonly #bufs: (Uint32Array | undefined)[] = new Array(NPAS).fill(undefined);
  readonly #lens = new Int32Array(NPAS);
  #malformed = 0;

  /** Numbers refused by add() so far (not "+1" and ten digits). */
  get malformed(): number { return this.#malformed; }

  add(number: string): boolean {
    const k = numberKey(number);
    if (k < 0) { this.#malformed++; return false; }
    this.addKey(k);
    return true;
  }

  /** By key (numberKey), 0 ≤ k < 10^10. */
  addKey(k: number): void {
    const npa = Math.floor(k / LINE);
    let buf = this.#bufs[npa];
    const n = this.#lens[npa]!;
    if (buf === undefined || n === buf.length) {
      const grown = new Uint32Array(buf === undefined ? 64 : buf.length * 2);
      if (buf) grown.set(buf);
      this.#bufs[npa] = buf = grown;
    }
    buf[n] = k - npa * LINE;
    this.#lens[npa] = n + 1;
  }

  build(pendingLimit?: number): NumberSet {
    const parts = new Array<Uint32Array>(NPAS);
    let size = 0;
    for (let npa = 0; npa < NPAS; npa++) {
      const buf = this.#bufs[npa];
      const n = this.#lens[npa]!;
      this.#bufs[npa] = undefined;
      if (buf === undefined || n === 0) { parts[npa] = EMPTY; continue; }
      const sorted = buf.subarray(0, n).sort();
      let u = 0;
      for (let i = 0; i < n; i++) if (i === 0 || sorted[i] !== sorted[u - 1]) sorted[u++] = sorted[i]!;
      parts[npa] = sorted.slice(0, u);
      size += u;
    }
    this.#lens.fill(0);
    return new NumberSet(parts, size, pendingLimit);
  }
}
