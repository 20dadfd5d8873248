/**
 * Group commit: events from every stream and call wait in one buffer and are
 * written together, so the cost of a ClickHouse insert (and its fsync) is
 * shared by thousands of events. A flush starts when the buffer reaches
 * flushRows or flushBytes, or flushIntervalMs after its oldest event arrived.
 *
 * Exactly one flush runs at a time. That is what makes the dedup exact within
 * one process: a flush sees every row the flushes before it wrote. Across
 * replicas (two processes writing the same table) two flushes can race and
 * store one call_id twice; the ReplacingMergeTree engine collapses such rows
 * on merge and billing queries count with `LIMIT 1 BY call_id`, so a race
 * never bills a call twice.
 *
 * A flush (1) keeps the first occurrence of each call_id in the batch,
 * (2) asks the in-memory filter, then ClickHouse for the ids it cannot rule
 * out, which are already stored, (3) inserts the new calls and the batch's
 * rejections, and (4) only then settles each waiter's counts. When a write
 * fails, every waiter of the batch fails: nothing is acknowledged, and the
 * switch's resend is deduplicated against whatever part did land.
 *
 * The buffer is struct-of-arrays (no object per event), and waiters are
 * settled per flush, not per event: no promise per event on the hot path.
 */
import type { Logger } from '../core/log.ts';
import type { CallStore, LookupKeys } from './adapters/clickhouse.ts';
import { BufferPool, LineBuffer } from './domain/line-buffer.ts';
import type { SeenIds } from './domain/seen-ids.ts';
import type { CallRow } from './domain/event.ts';
import { appendCallLine } from './domain/tsv.ts';
import type { IngestMetrics } from './metrics.ts';

/** One request (stream or unary call) waiting for its events to be durable. */
export interface Waiter {
  accepted: number;
  duplicates: number;
  /** Calls and rejections queued and not yet settled by a flush. */
  outstanding: number;
  /** Last flush that touched this waiter (so each is notified once per flush). */
  mark: number;
  /** After a flush settled some of its events, or failed them (err set). */
  onSettled(err: unknown): void;
}

export interface GroupCommitOptions {
  flushRows: number;
  flushBytes: number;
  flushIntervalMs: number;
  maxPendingBytes: number;
}

/** Ids per ClickHouse lookup, so parameters (carried in the URL by a server) stay small. */
export const LOOKUP_CHUNK = 10_000;
/** Streams are resumed once pending memory falls below this share of the bound. */
const RESUME_BELOW = 0.75;

class Pending {
  ids: string[] = [];
  sources: string[] = [];
  starts: number[] = [];
  /** Offset of each call's line in `tsv`. */
  offsets: number[] = [];
  waiters: Waiter[] = [];
  rejLines: string[] = [];
  rejWaiters: Waiter[] = [];
  bytes = 0;
  firstAt = 0;
  constructor(readonly tsv: LineBuffer) {}
  get rows(): number { return this.ids.length + this.rejLines.length; }
}

export class GroupCommit {
  private readonly pool: BufferPool;
  /** The batch events are added to. */
  private buf: Pending;
  /** Batches that reached flushRows / flushBytes while a flush ran, oldest first. */
  private readonly sealed: Pending[] = [];
  private pendingBytes = 0;
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private kickQueued = false;
  private draining = false;
  private epoch = 0;
  private isOverloaded = false;
  private readonly pressureListeners = new Set<(overloaded: boolean) => void>();

  constructor(
    private readonly deps: { store: CallStore; seen: SeenIds; metrics: IngestMetrics; log: Logger; clockNow: () => number },
    private readonly opts: GroupCommitOptions,
  ) {
    // Two stores cover the batch being written and the one filling up; a
    // batch never holds much more than flushBytes or the pending bound.
    this.pool = new BufferPool(2, 2 * Math.min(opts.flushBytes, opts.maxPendingBytes));
    this.buf = new Pending(new LineBuffer(this.pool));
  }

  /**
   * Publishes the pending-memory gauge: once per request message, not per
   * event (a gauge update costs as much as queueing an event).
   */
  publish(): void {
    this.deps.metrics.pendingBytes.set(this.pendingBytes);
  }

  /** Memory held for events not yet durable is at or past the bound. */
  get overloaded(): boolean { return this.isOverloaded; }

  get bytesPending(): number { return this.pendingBytes; }

  /** Called with true when the bound is reached and false once a flush freed enough. */
  onPressure(listener: (overloaded: boolean) => void): () => void {
    this.pressureListeners.add(listener);
    return () => this.pressureListeners.delete(listener);
  }

  /** Queues a valid call: its `calls` line is written straight into the batch's buffer. */
  addCall(w: Waiter, row: CallRow, ingestedAt: string): void {
    const b = this.buf;
    if (b.rows === 0) b.firstAt = performance.now();
    b.ids.push(row.callId);
    b.sources.push(row.source);
    b.starts.push(row.startMs);
    const at = appendCallLine(b.tsv, row, ingestedAt);
    b.offsets.push(at);
    b.waiters.push(w);
    w.outstanding++;
    this.grow(b, b.tsv.len - at + row.callId.length + ROW_OVERHEAD_BYTES);
  }

  addRejection(w: Waiter, line: string): void {
    const b = this.buf;
    if (b.rows === 0) b.firstAt = performance.now();
    b.rejLines.push(line);
    b.rejWaiters.push(w);
    w.outstanding++;
    this.grow(b, line.length + ROW_OVERHEAD_BYTES);
  }

  /** Writes everything buffered, including what arrives meanwhile; resolves when nothing is pending. */
  async drain(): Promise<void> {
    this.draining = true;
    try {
      for (;;) {
        if (this.flushing) await this.flushing;
        else if (this.buf.rows > 0 || this.sealed.length > 0) this.kick();
        else return;
      }
    } finally {
      this.draining = false;
    }
  }

  private grow(b: Pending, bytes: number): void {
    b.bytes += bytes;
    this.pendingBytes += bytes;
    if (!this.isOverloaded && this.pendingBytes >= this.opts.maxPendingBytes) this.setOverloaded(true);
    if (b.rows >= this.opts.flushRows || b.bytes >= this.opts.flushBytes) {
      // Full: later events go to a new batch, so no insert grows past the flush size.
      this.sealed.push(b);
      this.buf = new Pending(new LineBuffer(this.pool));
      // Flushed after the current message's events are all queued, not in the middle of them.
      if (!this.flushing && !this.kickQueued) { this.kickQueued = true; setImmediate(this.kick); }
    } else if (!this.flushing && !this.timer) {
      this.timer = setTimeout(this.kick, this.opts.flushIntervalMs);
    }
  }

  private setOverloaded(v: boolean): void {
    this.isOverloaded = v;
    for (const l of this.pressureListeners) l(v);
  }

  private due(): boolean {
    if (this.sealed.length > 0) return true;
    const b = this.buf;
    if (b.rows === 0) return false;
    return this.draining || performance.now() - b.firstAt >= this.opts.flushIntervalMs;
  }

  private readonly kick = (): void => {
    this.kickQueued = false;
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    if (this.flushing || (this.buf.rows === 0 && this.sealed.length === 0)) return;
    this.flushing = this.loop().finally(() => {
      this.flushing = undefined;
      this.armTimer();
    });
  };

  private armTimer(): void {
    const b = this.buf;
    if (this.sealed.length > 0) { this.kick(); return; }
    if (b.rows === 0 || this.timer || this.flushing) return;
    const wait = Math.max(0, this.opts.flushIntervalMs - (performance.now() - b.firstAt));
    this.timer = setTimeout(this.kick, wait);
  }

  private async loop(): Promise<void> {
    do await this.flush(this.take());
    while (this.due());
  }

  /** The oldest full batch, else the open one. */
  private take(): Pending {
    const full = this.sealed.shift();
    if (full) return full;
    const b = this.buf;
    this.buf = new Pending(new LineBuffer(this.pool));
    return b;
  }

  private async flush(b: Pending): Promise<void> {
    const { store, seen, metrics, log } = this.deps;
    const t0 = performance.now();
    const n = b.ids.length;
    const dup = new Uint8Array(n);
    try {
      // Each id is hashed once: the hashes find repeats within the batch
      // (exactly: equal hashes are confirmed by comparing the ids) and are
      // the filter's keys for the check here and the add below.
      const hashes = new Uint32Array(2 * n);
      const firstOf = new FirstOccurrence(n);
      const ask: number[] = [];
      for (let i = 0; i < n; i++) {
        seen.hashInto(b.ids[i]!, hashes, 2 * i);
        if (!firstOf.isFirst(i, hashes, b.ids)) { dup[i] = 1; continue; }
        if (seen.checkHashed(hashes, 2 * i, b.starts[i]!) !== 'absent') ask.push(i);
      }
      if (ask.length > 0) {
        metrics.lookedUp.inc(ask.length);
        for (let c = 0; c < ask.length; c += LOOKUP_CHUNK) {
          const idx = ask.slice(c, c + LOOKUP_CHUNK);
          const existing = new Set(await store.lookupExisting(lookupKeys(b, idx)));
          if (existing.size > 0) for (const i of idx) if (existing.has(b.ids[i]!)) dup[i] = 1;
        }
      }
      let dups = 0;
      for (let i = 0; i < n; i++) {
        if (dup[i]) { dups++; continue; }
        seen.addHashed(hashes, b.starts[i]!, 2 * i); // before the insert: see SeenIds
      }
      const body = dups === 0 ? b.tsv.bytes() : b.tsv.select(b.offsets, (i) => dup[i] === 0);
      const t1 = performance.now();
      const results = await Promise.allSettled([store.insertCalls(body), store.insertRejections(b.rejLines.join(''))]);
      for (const r of results) if (r.status === 'rejected') throw r.reason;
      log.debug({ rows: b.rows, asked: ask.length, prepMs: Math.round(t1 - t0), insertMs: Math.round(performance.now() - t1) }, 'flushed');
    } catch (err) {
      b.tsv.release();
      metrics.flushFailures.inc();
      log.error({ err, rows: b.rows }, 'flush failed; its requests are answered UNAVAILABLE');
      this.settle(b, dup, err);
      return;
    }
    b.tsv.release();
    metrics.flushSeconds.observe((performance.now() - t0) / 1000);
    metrics.batchRows.observe(b.rows);
    this.settle(b, dup, undefined);
  }

  private settle(b: Pending, dup: Uint8Array, err: unknown): void {
    const epoch = ++this.epoch;
    const touched: Waiter[] = [];
    let accepted = 0;
    for (let i = 0; i < b.ids.length; i++) {
      const w = b.waiters[i]!;
      if (!err) {
        if (dup[i]) w.duplicates++;
        else { w.accepted++; accepted++; }
      }
      w.outstanding--;
      if (w.mark !== epoch) { w.mark = epoch; touched.push(w); }
    }
    for (let i = 0; i < b.rejWaiters.length; i++) {
      const w = b.rejWaiters[i]!;
      w.outstanding--;
      if (w.mark !== epoch) { w.mark = epoch; touched.push(w); }
    }
    if (!err) {
      this.deps.metrics.accepted.inc(accepted);
      this.deps.metrics.duplicates.inc(b.ids.length - accepted);
      this.deps.metrics.seenFilterBytes.set(this.deps.seen.bytes());
      this.deps.seen.evict(this.deps.clockNow());
    }
    this.pendingBytes -= b.bytes;
    this.deps.metrics.pendingBytes.set(this.pendingBytes);
    for (const w of touched) {
      try { w.onSettled(err); } catch (e) { this.deps.log.error({ err: e }, 'waiter callback failed'); }
    }
    if (this.isOverloaded && this.pendingBytes < this.opts.maxPendingBytes * RESUME_BELOW) this.setOverloaded(false);
  }
}

/**
 * Finds repeated ids in a batch by their (already computed) 64-bit hashes:
 * an open-addressing table of row indexes, cheaper than a Set of strings at
 * tens of thousands of ids per flush. Equal hashes are confirmed by
 * comparing the ids, so a hash collision never drops a call.
 */
export class FirstOccurrence {
  private readonly slots: Int32Array;
  private readonly mask: number;

  constructor(n: number) {
    let size = 16;
    while (size < n * 2) size *= 2;
    this.slots = new Int32Array(size).fill(-1);
    this.mask = size - 1;
  }

  /** Records row i; false when an earlier row had the same id. */
  isFirst(i: number, hashes: Uint32Array, ids: readonly string[]): boolean {
    const h0 = hashes[2 * i]!;
    const h1 = hashes[2 * i + 1]!;
    for (let s = h0 & this.mask; ; s = (s + 1) & this.mask) {
      const j = this.slots[s]!;
      if (j < 0) { this.slots[s] = i; return true; }
      if (hashes[2 * j] === h0 && hashes[2 * j + 1] === h1 && ids[j] === ids[i]) return false;
    }
  }
}

/** Memory an event holds while pending beyond its line and id: array slots and string headers. */
const ROW_OVERHEAD_BYTES = 96;

function lookupKeys(b: Pending, idx: number[]): LookupKeys {
  const ids: string[] = [];
  const sources = new Set<string>();
  let loMs = Infinity;
  let hiMs = -Infinity;
  for (const i of idx) {
    ids.push(b.ids[i]!);
    sources.add(b.sources[i]!);
    const s = b.starts[i]!;
    if (s < loMs) loMs = s;
    if (s > hiMs) hiMs = s;
  }
  return { ids, sources: [...sources], loMs, hiMs };
}
