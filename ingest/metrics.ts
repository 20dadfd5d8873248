/**
 * Prometheus metrics of one ingest service instance, in its own Registry
 * (never the global default) so several instances can live in one process.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface IngestMetrics {
  registry: Registry;
  accepted: Counter;
  duplicates: Counter;
  rejected: Counter<'field' | 'reason'>;
  batchRows: Histogram;
  flushSeconds: Histogram;
  flushFailures: Counter;
  pendingBytes: Gauge;
  lookedUp: Counter;
  pausedStreams: Gauge;
  seenFilterBytes: Gauge;
}

export function createIngestMetrics(opts: { processMetrics?: boolean } = {}): IngestMetrics {
  const registry = new Registry();
  const registers = [registry];
  if (opts.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'phonebill_ingest_' });
  return {
    registry,
    accepted: new Counter({ name: 'phonebill_ingest_events_accepted_total', help: 'Calls made durable (new call_ids).', registers }),
    duplicates: new Counter({ name: 'phonebill_ingest_events_duplicate_total', help: 'Calls whose call_id was already stored or repeated in the same batch.', registers }),
    rejected: new Counter({
      name: 'phonebill_ingest_events_rejected_total',
      help: 'Events refused by validation, by field and reason (digits in the reason replaced by N to bound the label values).',
      labelNames: ['field', 'reason'],
      registers,
    }),
    batchRows: new Histogram({
      name: 'phonebill_ingest_batch_rows',
      help: 'Events per group-commit flush (calls and rejections).',
      buckets: [1, 10, 100, 1000, 5000, 10_000, 25_000, 50_000, 100_000, 250_000],
      registers,
    }),
    flushSeconds: new Histogram({
      name: 'phonebill_ingest_flush_seconds',
      help: 'Time of one flush: dedup lookup plus inserts, until the batch is durable.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    flushFailures: new Counter({ name: 'phonebill_ingest_flush_failures_total', help: 'Flushes whose write failed (their requests were answered UNAVAILABLE).', registers }),
    pendingBytes: new Gauge({ name: 'phonebill_ingest_pending_bytes', help: 'Estimated memory held by events not yet durable (bounded by INGEST_MAX_PENDING_BYTES).', registers }),
    lookedUp: new Counter({ name: 'phonebill_ingest_dedup_lookups_total', help: 'call_ids checked against ClickHouse (the in-memory filter could not rule them out).', registers }),
    pausedStreams: new Gauge({ name: 'phonebill_ingest_paused_streams', help: 'Streams not being read because of backpressure.', registers }),
    seenFilterBytes: new Gauge({ name: 'phonebill_ingest_seen_filter_bytes', help: 'Memory of the in-memory call_id filters (dedup window).', registers }),
  };
}

/** Bounded label value for a rejection reason: the wording without the numbers in it. */
export const reasonLabel = (reason: string): string => reason.replace(/"[^"]*"/g, '"…"').replace(/\d+/g, 'N').slice(0, 120);
