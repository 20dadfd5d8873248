/**
 * Measures what the replica costs per subscriber: builds a replica of `n`
 * synthetic subscribers (1% blocked) through the same path a load from
 * Redis takes (E.164 strings handed over in bucket-sized batches to the
 * builders), then reads the growth of heapUsed + arrayBuffers between two
 * full garbage collections. Used by admission/test/memory.test.ts and the
 * benchmark (`npm run bench -- admission`).
 */
import { runInNewContext } from 'node:vm';
import v8 from 'node:v8';
import { CallerState } from '../domain/decide.ts';
import { BLOCKED, NumberTableBuilder, SUBSCRIBER } from './number-table.ts';
import { Replica } from './replica.ts';

export interface ReplicaMemoryReport {
  subscribers: number;
  blocked: number;
  /** (heapUsed + arrayBuffers) growth per subscriber, blocked set included. */
  bytesPerSubscriber: number;
  /** The hash slots alone, per subscriber (what Replica.bytes() counts). */
  arrayBytesPerSubscriber: number;
  heapDeltaBytes: number;
  arrayBuffersDeltaBytes: number;
  buildMs: number;
  /** Mean time of one caller lookup (hits and misses mixed). */
  lookupNs: number;
}

/** A full collection on demand, whether or not node was started with --expose-gc. */
export function fullGc(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  v8.setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

const BATCH = 40_000; // about one bucket's SMEMBERS reply at 10M subscribers
const NPA_COUNT = 300;
const STRIDE = 7919; // prime: numbers of one NPA come in no particular order

/** The i-th synthetic subscriber: distinct for i < NPA_COUNT * 8,000,000. */
function subscriberKey(i: number): number {
  const j = i % NPA_COUNT;
  const npa = 201 + ((j * 37) % 790); // spread over 201..990
  const line = 2_000_000 + ((Math.floor(i / NPA_COUNT) * STRIDE) % 8_000_000);
  return npa * 10_000_000 + line;
}

/**
 * `viaStrings` (default true) hands the builders E.164 strings as a load
 * from Redis does; false hands them the numeric keys (same result, much
 * faster: most of the time with strings goes into making them).
 */
export function measureReplicaMemory(n: number, opts: { blockedShare?: number; viaStrings?: boolean } = {}): ReplicaMemoryReport {
  const blockedShare = opts.blockedShare ?? 0.01;
  const viaStrings = opts.viaStrings ?? true;
  const gc = fullGc();
  gc();
  gc();
  const m0 = process.memoryUsage();
  const t0 = performance.now();
  const b = new NumberTableBuilder();
  const every = Math.max(1, Math.round(1 / blockedShare));
  // Spread over every area code alike (every `every`-th number of each one).
  const isBlocked = (i: number) => Math.floor(i / NPA_COUNT) % every === 0;
  for (let start = 0; start < n; start += BATCH) {
    const end = Math.min(n, start + BATCH);
    if (viaStrings) {
      const batch: string[] = [];
      for (let i = start; i < end; i++) batch.push(`+1${subscriberKey(i)}`);
      for (const s of batch) b.add(s, SUBSCRIBER);
      for (let i = start; i < end; i++) if (isBlocked(i)) b.add(batch[i - start]!, BLOCKED);
    } else {
      for (let i = start; i < end; i++) b.addKey(subscriberKey(i), SUBSCRIBER);
      for (let i = start; i < end; i++) if (isBlocked(i)) b.addKey(subscriberKey(i), BLOCKED);
    }
  }
  const replica = new Replica(b.build(), 'memory');
  const buildMs = performance.now() - t0;
  gc();
  gc();
  const m1 = process.memoryUsage();

  const probes = 1_000_000;
  const numbers = Array.from({ length: 1024 }, (_, i) => `+1${subscriberKey((i * 104_729) % n) + (i % 2)}`);
  let hits = 0;
  let lookupNs = Infinity;
  for (let round = 0; round < 3; round++) { // the best of three: the first includes JIT warm-up
    const t1 = performance.now();
    for (let i = 0; i < probes; i++) if (replica.lookup(numbers[i & 1023]!) !== CallerState.Unknown) hits++;
    lookupNs = Math.min(lookupNs, ((performance.now() - t1) * 1e6) / probes);
  }
  if (hits === 0) throw new Error('no lookup hit: the probe numbers are wrong');

  const heap = m1.heapUsed - m0.heapUsed;
  const ab = m1.arrayBuffers - m0.arrayBuffers;
  const size = replica.subscribers;
  return {
    subscribers: size,
    blocked: replica.blocked,
    bytesPerSubscriber: (heap + ab) / size,
    arrayBytesPerSubscriber: replica.bytes() / size,
    heapDeltaBytes: heap,
    arrayBuffersDeltaBytes: ab,
    buildMs,
    lookupNs,
  };
}
