/**
 * TabSeparated lines accumulated in native memory (a Buffer), not as V8
 * strings: a pending line lives for up to a flush interval, long enough to be
 * promoted to V8's old generation, and at a few hundred thousand lines a
 * second that garbage, not the data, is what made the heap (and RSS) grow
 * far past the pending bound. Buffers are recycled through a small pool, so
 * steady-state ingest allocates no new backing stores.
 */

export class LineBuffer {
  buf: Buffer;
  len = 0;

  constructor(private readonly pool: BufferPool) {
    this.buf = pool.take();
  }

  /** Appends `s` (UTF-8); returns the offset it starts at. */
  write(s: string): number {
    const at = this.len;
    // A UTF-8 byte count is at most 3 per UTF-16 unit; most lines are ASCII.
    if (this.buf.length - at < s.length * 3) this.grow(s.length * 3);
    this.len += this.buf.write(s, at, 'utf8');
    return at;
  }

  /** Room for at least `n` more bytes. */
  ensure(n: number): void {
    if (this.buf.length - this.len < n) this.grow(n);
  }

  /** The bytes written, without copying; valid until release(). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  /** Copies the lines [starts[i], ends[i]) for which keep(i) into one Buffer (only when a line must be dropped). */
  select(starts: readonly number[], keep: (i: number) => boolean): Buffer {
    const n = starts.length;
    let size = 0;
    for (let i = 0; i < n; i++) if (keep(i)) size += (i + 1 < n ? starts[i + 1]! : this.len) - starts[i]!;
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    let runStart = -1;
    for (let i = 0; i <= n; i++) {
      const k = i < n && keep(i);
      if (k && runStart < 0) runStart = starts[i]!;
      if (!k && runStart >= 0) {
        const runEnd = i < n ? starts[i]! : this.len;
        at += this.buf.copy(out, at, runStart, runEnd);
        runStart = -1;
      }
    }
    return out;
  }

  /** Hands the backing store back to the pool; the buffer must not be used afterwards. */
  release(): void {
    this.pool.give(this.buf);
    this.buf = Buffer.alloc(0);
    this.len = 0;
  }

  private grow(need: number): void {
    let size = Math.max(this.buf.length * 2, 64 * 1024);
    while (size - this.len < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.len);
    this.pool.give(this.buf);
    this.buf = next;
  }
}

/** A few reusable backing stores; anything beyond `keep` buffers or `maxBytes` each is left to the GC. */
export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(private readonly keep: number, private readonly maxBytes: number, private readonly initialBytes = 64 * 1024) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(this.initialBytes);
  }

  give(b: Buffer): void {
    if (b.length === 0 || b.length > this.maxBytes || this.free.length >= this.keep) return;
    // Largest first, so a new batch starts with the roomiest store.
    this.free.push(b);
    this.free.sort((x, y) => x.length - y.length);
  }
}
