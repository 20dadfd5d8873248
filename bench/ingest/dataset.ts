/**
 * The benchmark's calls: shards of one generated month among the same
 * subscribers, each shard with its own call_ids, so every process (load
 * generators, the direct-insert baseline) rebuilds exactly its rows from a few
 * numbers instead of receiving them. No duplicates and no invalid events:
 * the gRPC runs and the baseline store the very same rows.
 */
import { classifyCall } from '../../core/numbers/index.ts';
import { millisToTimestamp } from '../../core/grpc/proto.ts';
import { createTraffic, lastFullMonth, type TrafficEvent } from '../../scripts/lib/traffic.ts';
import type { WireEvent } from '../../cli/lib/ingest-client.ts';

export interface DatasetSpec {
  seed: number;
  subscribers: number;
  /** Calls in each shard. */
  callsPerShard: number;
  /** call_id prefix, so two runs against one service do not collide. */
  prefix: string;
  /** The month the calls start in: the last full month before this instant. */
  asOf: number;
}

export const DEFAULT_SUBSCRIBERS = 50_000;

/** Batches of `batchSize` events of shard `shard`. */
export function* shardBatches(spec: DatasetSpec, shard: number, batchSize: number): Generator<TrafficEvent[]> {
  const { from, to } = lastFullMonth(spec.asOf);
  const tr = createTraffic({
    seed: spec.seed,
    eventSeed: spec.seed * 1000 + shard + 1,
    subscribers: spec.subscribers,
    calls: spec.callsPerShard,
    from,
    to,
    batchSize,
    duplicateRate: 0,
    invalidRate: 0,
    callIdPrefix: `${spec.prefix}${shard}`,
  });
  yield* tr.batches();
}

export const toWire = (e: TrafficEvent): WireEvent => ({
  call_id: e.call_id,
  source_number: e.source_number,
  target_number: e.target_number,
  start: millisToTimestamp(e.startMs),
  end: millisToTimestamp(e.endMs),
});

const dt = (ms: number) => new Date(ms).toISOString().slice(0, 23).replace('T', ' ');

/** The calls-table row the service would store (classification included). */
export function toRow(e: TrafficEvent, ingestedAt: number): Record<string, string | number> {
  const c = classifyCall(e.source_number, e.target_number);
  if (!c.ok) throw new Error(`benchmark data must be valid: ${e.call_id} ${c.field}: ${c.reason}`);
  return {
    call_id: e.call_id,
    source_number: e.source_number,
    target_number: e.target_number,
    started_at: dt(e.startMs),
    ended_at: dt(e.endMs),
    duration_ms: e.endMs - e.startMs,
    source_country: c.sourceCountry,
    target_country: c.targetCountry,
    call_class: c.callClass,
    ingested_at: dt(ingestedAt),
  };
}
