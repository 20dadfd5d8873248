/**
 * Which call_ids may already be stored, answered in memory so that a flush
 * asks ClickHouse only about the few that might be.
 *
 * Why: `calls` is ordered by (source_number, started_at, call_id). A batch of
 * fresh calls touches thousands of sources, and every source can sit in its
 * own granule, so even a primary-key lookup of a 10,000-id batch reads nearly
 * every granule of the month (measured ≈320 ms per 10k ids on a 5M-row
 * table, more than the insert itself). A bloom filter per day of start
 * answers "certainly new" for almost every new call; only "maybe" answers
 * (true resends and a ~1e-4 false-positive rate) go to the exact lookup.
 *
 * Resends carry the same start, so the day of start picks the filter, and
 * days older than the window are dropped (memory stays proportional to the
 * calls of the window, 2.5–5 bytes per call). Calls that start before the
 * window are answered 'unknown' and always looked up in ClickHouse.
 *
 * A false "maybe" costs one lookup; a false "absent" would store a duplicate,
 * so ids are added before their insert is attempted (an insert that fails
 * half-way may have stored some of them).
 */

const DAY_MS = 86_400_000;
const BITS_PER_ID = 20;
const HASHES = 10; // with 20 bits per id: false-positive rate ≈ 9e-5 per filter
const FIRST_CAPACITY = 1 << 16;

/**
 * Two independent 32-bit hashes of an id's UTF-8 bytes (FNV-1a-style
 * mixing, then murmur3's finaliser). Bytes, not UTF-16 units, so ids read
 * back from ClickHouse can be hashed straight from the result buffer.
 */
const HASH_A = 0x811c9dc5;
const HASH_B = 0x2545f491;

class Hasher {
  a = HASH_A;
  b = HASH_B;

  reset(): void {
    this.a = HASH_A;
    this.b = HASH_B;
  }

  byte(c: number): void {
    this.a = Math.imul(this.a ^ c, 0x01000193);
    this.b = Math.imul(this.b ^ c, 0x5bd1e995);
  }

  string(s: string): void {
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) { this.byte(c); continue; }
      if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d < 0xe000) { c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i++; }
      }
      if (c >= 0xd800 && c < 0xe000) c = 0xfffd; // a lone surrogate is stored as U+FFFD
      if (c < 0x800) { this.byte(0xc0 | (c >> 6)); this.byte(0x80 | (c & 63)); }
      else if (c < 0x10000) { this.byte(0xe0 | (c >> 12)); this.byte(0x80 | ((c >> 6) & 63)); this.byte(0x80 | (c & 63)); }
      else { this.byte(0xf0 | (c >> 18)); this.byte(0x80 | ((c >> 12) & 63)); this.byte(0x80 | ((c >> 6) & 63)); this.byte(0x80 | (c & 63)); }
    }
  }

  finish(out: Uint32Array): void {
    finish(this.a, this.b, out);
  }
}

function finish(a: number, b: number, out: Uint32Array): void {
  out[0] = fmix(a);
  out[1] = fmix(b ^ 0x9e3779b9) | 1; // odd, so the probe sequence visits distinct bits
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

class Bloom {
  readonly words: Uint32Array;
  readonly mask: number;
  count = 0;

  constructor(readonly capacity: number) {
    let bits = 1 << 10;
    while (bits < capacity * BITS_PER_ID) bits *= 2;
    this.words = new Uint32Array(bits >>> 5);
    this.mask = bits - 1;
  }

  add(h: Uint32Array, at: number): void {
    const w = this.words;
    const step = h[at + 1]!;
    for (let i = 0, x = h[at]!; i < HASHES; i++, x = (x + step) >>> 0) {
      const bit = x & this.mask;
      w[bit >>> 5]! |= 1 << (bit & 31);
    }
    this.count++;
  }

  has(h: Uint32Array, at: number): boolean {
    const w = this.words;
    const step = h[at + 1]!;
    for (let i = 0, x = h[at]!; i < HASHES; i++, x = (x + step) >>> 0) {
      const bit = x & this.mask;
      if ((w[bit >>> 5]! & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }
}

export type Seen = 'absent' | 'maybe' | 'unknown';

export class SeenIds {
  /** Day number (ms / DAY_MS) -> filters of growing capacity, the newest last. */
  private readonly days = new Map<number, Bloom[]>();
  /** Earliest day whose ids are all known here; earlier days answer 'unknown'. */
  private coveredFrom: number;
  private readonly h = new Uint32Array(2);
  private readonly hasher = new Hasher();

  /** Until `startCovering` (ids of the window loaded from storage), every answer is 'unknown'. */
  constructor(private readonly windowDays: number) {
    this.coveredFrom = Infinity;
  }

  /** The first day of the window at `nowMs`: what the warm-up must load. */
  windowStart(nowMs: number): number {
    return (Math.floor(nowMs / DAY_MS) - this.windowDays) * DAY_MS;
  }

  /** Declares that every stored id starting at or after windowStart(nowMs) has been added. */
  startCovering(nowMs: number): void {
    this.coveredFrom = Math.floor(this.windowStart(nowMs) / DAY_MS);
  }

  add(callId: string, startMs: number): void {
    this.hashInto(callId, this.h, 0);
    this.addHashed(this.h, startMs);
  }

  /** The id's two hashes into out[at], out[at + 1]: hash once, then check and add. */
  hashInto(callId: string, out: Uint32Array, at: number): void {
    this.hasher.reset();
    this.hasher.string(callId);
    this.hasher.finish(this.h);
    out[at] = this.h[0]!;
    out[at + 1] = this.h[1]!;
  }

  /** add() with the id's hashes already in h[at], h[at + 1] (see hashInto). */
  addHashed(h: Uint32Array, startMs: number, at = 0): void {
    const day = Math.floor(startMs / DAY_MS);
    if (day < this.coveredFrom && this.coveredFrom !== Infinity) return; // answered 'unknown' anyway
    let chain = this.days.get(day);
    if (!chain) this.days.set(day, (chain = [new Bloom(FIRST_CAPACITY)]));
    let last = chain[chain.length - 1]!;
    if (last.count >= last.capacity) chain.push((last = new Bloom(last.capacity * 2)));
    last.add(h, at);
  }

  check(callId: string, startMs: number): Seen {
    const day = Math.floor(startMs / DAY_MS);
    if (day < this.coveredFrom) return 'unknown';
    const chain = this.days.get(day);
    if (!chain) return 'absent';
    this.hashInto(callId, this.h, 0);
    return this.checkChain(chain, this.h, 0);
  }

  /** check() with the id's hashes already in h[at], h[at + 1] (see hashInto). */
  checkHashed(h: Uint32Array, at: number, startMs: number): Seen {
    const day = Math.floor(startMs / DAY_MS);
    if (day < this.coveredFrom) return 'unknown';
    const chain = this.days.get(day);
    return chain ? this.checkChain(chain, h, at) : 'absent';
  }

  private checkChain(chain: Bloom[], h: Uint32Array, at: number): Seen {
    for (let i = 0; i < chain.length; i++) if (chain[i]!.has(h, at)) return 'maybe';
    return 'absent';
  }

  /** Drops the days that left the window; their ids now answer 'unknown'. */
  evict(nowMs: number): void {
    const first = Math.floor(this.windowStart(nowMs) / DAY_MS);
    if (this.coveredFrom !== Infinity && first > this.coveredFrom) this.coveredFrom = first;
    for (const day of this.days.keys()) if (day < first) this.days.delete(day);
  }

  /** Memory held by the filters. */
  bytes(): number {
    let n = 0;
    for (const chain of this.days.values()) for (const b of chain) n += b.words.byteLength;
    return n;
  }
}

const TAB = 9;
const NL = 10;
const BACKSLASH = 92;
/** TabSeparated escapes: the byte after a backslash -> the byte it stands for. */
const UNESCAPE = new Uint8Array(256).map((_, i) => i);
UNESCAPE[0x74] = 9; UNESCAPE[0x6e] = 10; UNESCAPE[0x72] = 13; UNESCAPE[0x30] = 0; UNESCAPE[0x62] = 8; UNESCAPE[0x66] = 12;

/**
 * Feeds `call_id<TAB>epoch_millis<LF>` TabSeparated bytes (a warm-up scan
 * of stored calls, in chunks of any size) into a SeenIds without making a
 * string per id: hashing the bytes straight from the result buffer keeps a
 * warm-up of millions of ids to about a second and a few MB.
 */
export class SeenIdsLoader {
  private readonly h = new Uint32Array(2);
  // Parser state carried across chunks; the loop works on locals (this is the hot loop of a warm-up).
  private a = HASH_A;
  private b = HASH_B;
  private inNumber = false;
  private escaped = false;
  private num = 0;
  count = 0;

  constructor(private readonly seen: SeenIds) {}

  push(buf: Uint8Array): void {
    let { a, b, inNumber, escaped, num, count } = this;
    const n = buf.length;
    for (let i = 0; i < n; i++) {
      const c = buf[i]!;
      if (inNumber) {
        if (c === NL) {
          this.seen.addHashed(this.h, num);
          count++;
          inNumber = false;
          num = 0;
          a = HASH_A;
          b = HASH_B;
        } else {
          num = num * 10 + (c - 48);
        }
      } else if (c === TAB && !escaped) {
        finish(a, b, this.h);
        inNumber = true;
      } else if (c === BACKSLASH && !escaped) {
        escaped = true;
      } else {
        const v = escaped ? UNESCAPE[c]! : c;
        escaped = false;
        a = Math.imul(a ^ v, 0x01000193);
        b = Math.imul(b ^ v, 0x5bd1e995);
      }
    }
    Object.assign(this, { a, b, inNumber, escaped, num, count });
  }
}
