/**
 * The ingest use case: validate call-end events, queue them for group
 * commit, and tell each request what became of its events once they are
 * durable. Transports (gRPC) only decode and pass events on.
 */
import type { ClickHouse } from '../core/clickhouse/client.ts';
import type { Clock } from '../core/clock.ts';
import type { Config } from '../core/config.ts';
import { overloaded, unavailable } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { warmUpNumbers } from '../core/numbers/index.ts';
import { createClickHouseCallStore, type CallStore } from './adapters/clickhouse.ts';
import { GroupCommit, type Waiter } from './batcher.ts';
import { validateEvent, type CallEndEvent, type Limits, type Rejection } from './domain/event.ts';
import { SeenIds, SeenIdsLoader } from './domain/seen-ids.ts';
import { dateTime64Field, rejectionLine } from './domain/tsv.ts';
import { createIngestMetrics, reasonLabel, type IngestMetrics } from './metrics.ts';

/** What a request (stream or unary call) is answered. */
export interface RecordResult {
  accepted: number;
  duplicates: number;
  rejected: number;
  /** The first MAX_ECHOED_REJECTIONS; `rejected` counts them all, and all are stored. */
  rejections: Rejection[];
}

/** Rejections echoed back per response; a bulk load of bad data must not make a huge answer. */
export const MAX_ECHOED_REJECTIONS = 1000;

/** One request in progress: add events as they arrive, end it, await `done`. */
export interface IngestRequest {
  /** Validates and queues events (synchronously; no promise per event). Throws 'unavailable' once the service is closing. */
  add(events: readonly CallEndEvent[]): void;
  addOne(event: CallEndEvent): void;
  /** No more events: `done` settles once every queued event is durable. */
  end(): void;
  /** Resolves with the counts, or rejects ('unavailable') if a write failed; may reject before end(). */
  readonly done: Promise<RecordResult>;
}

export type IngestConfig = Pick<Config,
  'ingestFlushRows' | 'ingestFlushBytes' | 'ingestFlushIntervalMs' | 'ingestMaxPendingBytes' |
  'ingestMaxCallSeconds' | 'ingestMaxFutureSeconds' | 'ingestDedupWindowDays'>;

export interface IngestService {
  begin(): IngestRequest;
  /** A unary call: refused with 'overloaded' while pending memory is past the bound. */
  recordOne(event: CallEndEvent): Promise<RecordResult>;
  /** Pending memory is past INGEST_MAX_PENDING_BYTES: stop reading streams. */
  readonly overloaded: boolean;
  onBackpressure(listener: (overloaded: boolean) => void): () => void;
  /** The dedup filter holds every stored call_id of the window (until then, every id is looked up in ClickHouse). */
  readonly ready: Promise<void>;
  readonly metrics: IngestMetrics;
  /** Refuses new events and writes everything queued. */
  drain(): Promise<void>;
}

export interface IngestDeps {
  ch: ClickHouse;
  clock: Clock;
  log: Logger;
  config: IngestConfig;
  /** Default: the ClickHouse store on `ch`. */
  store?: CallStore;
  metrics?: IngestMetrics;
}

class Request implements IngestRequest, Waiter {
  accepted = 0;
  duplicates = 0;
  rejected = 0;
  outstanding = 0;
  mark = 0;
  readonly rejections: Rejection[] = [];
  readonly done: Promise<RecordResult>;
  private ended = false;
  private settled = false;
  private resolve!: (r: RecordResult) => void;
  private reject!: (e: unknown) => void;

  constructor(private readonly svc: Service) {
    this.done = new Promise((res, rej) => { this.resolve = res; this.reject = rej; });
    // A transport that stopped listening (cancelled call) must not cause an unhandled rejection.
    this.done.catch(() => {});
  }

  add(events: readonly CallEndEvent[]): void {
    this.svc.enqueue(this, events);
  }

  addOne(event: CallEndEvent): void {
    this.svc.enqueue(this, [event]);
  }

  end(): void {
    this.ended = true;
    this.maybeFinish();
  }

  onSettled(err: unknown): void {
    if (this.settled) return;
    if (err) {
      this.settled = true;
      this.reject(unavailable('storing calls failed; nothing of this request is acknowledged, resend it', 'STORE_FAILED', err));
      return;
    }
    this.maybeFinish();
  }

  private maybeFinish(): void {
    if (this.settled || !this.ended || this.outstanding > 0) return;
    this.settled = true;
    this.resolve({ accepted: this.accepted, duplicates: this.duplicates, rejected: this.rejected, rejections: this.rejections });
  }
}

class Service implements IngestService {
  readonly metrics: IngestMetrics;
  readonly ready: Promise<void>;
  private readonly batcher: GroupCommit;
  private readonly limits: Limits;
  private closing = false;

  constructor(private readonly deps: IngestDeps) {
    const { config, clock, log } = deps;
    warmUpNumbers();
    this.metrics = deps.metrics ?? createIngestMetrics();
    this.limits = { maxCallSeconds: config.ingestMaxCallSeconds, maxFutureSeconds: config.ingestMaxFutureSeconds };
    const store = deps.store ?? createClickHouseCallStore(deps.ch);
    const seen = new SeenIds(config.ingestDedupWindowDays);
    this.batcher = new GroupCommit(
      { store, seen, metrics: this.metrics, log, clockNow: () => clock.now() },
      {
        flushRows: config.ingestFlushRows,
        flushBytes: config.ingestFlushBytes,
        flushIntervalMs: config.ingestFlushIntervalMs,
        maxPendingBytes: config.ingestMaxPendingBytes,
      },
    );
    this.ready = this.warmUp(store, seen);
    this.ready.catch(() => {});
  }

  /**
   * Loads the window's stored call_ids into the filter. Flushes may run
   * meanwhile: until it is done the filter answers 'unknown' and every id is
   * looked up in ClickHouse, and ids written meanwhile are added by their
   * flush, so nothing stored is ever missing from the filter.
   */
  private async warmUp(store: CallStore, seen: SeenIds): Promise<void> {
    const at = this.deps.clock.now();
    const t0 = performance.now();
    try {
      const loader = new SeenIdsLoader(seen);
      await store.scanIdsSince(seen.windowStart(at), (chunk) => loader.push(chunk));
      const n = loader.count;
      seen.startCovering(at);
      this.metrics.seenFilterBytes.set(seen.bytes());
      this.deps.log.info({ ids: n, ms: Math.round(performance.now() - t0), filterBytes: seen.bytes() }, 'dedup filter loaded');
    } catch (err) {
      this.deps.log.error({ err }, 'dedup filter not loaded: every call_id is looked up in ClickHouse');
      throw err;
    }
  }

  begin(): IngestRequest {
    return new Request(this);
  }

  async recordOne(event: CallEndEvent): Promise<RecordResult> {
    if (this.batcher.overloaded) throw overloaded('ingest is at its memory bound (INGEST_MAX_PENDING_BYTES); retry shortly', 'INGEST_OVERLOADED');
    const req = new Request(this);
    req.addOne(event);
    req.end();
    return req.done;
  }

  get overloaded(): boolean {
    return this.batcher.overloaded;
  }

  onBackpressure(listener: (overloaded: boolean) => void): () => void {
    return this.batcher.onPressure(listener);
  }

  enqueue(req: Request, events: readonly CallEndEvent[]): void {
    if (this.closing) throw unavailable('ingest is shutting down; resend to another instance or after restart', 'INGEST_CLOSING');
    const now = this.deps.clock.now();
    const at = dateTime64Field(now);
    for (let i = 0; i < events.length; i++) {
      const ev = events[i]!;
      const v = validateEvent(ev, now, this.limits);
      if (v.ok) {
        this.batcher.addCall(req, v.row, at);
      } else {
        req.rejected++;
        if (req.rejections.length < MAX_ECHOED_REJECTIONS) req.rejections.push(v.rejection);
        this.metrics.rejected.inc({ field: v.rejection.field, reason: reasonLabel(v.rejection.reason) });
        this.batcher.addRejection(req, rejectionLine(v.rejection, v.raw, at));
      }
    }
    this.batcher.publish();
  }

  async drain(): Promise<void> {
    this.closing = true;
    await this.batcher.drain();
  }
}

export function createIngest(deps: IngestDeps): IngestService {
  return new Service(deps);
}
