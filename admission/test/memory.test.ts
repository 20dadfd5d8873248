/**
 * The replica's memory with 10 million subscribers (1% blocked): at most
 * 40 bytes per subscriber (the bound). Deterministic: the hash
 * partitions are sized by their counts (powers of two, ≤ 3/4 full). The builder gets
 * numeric keys here to keep the test quick; the benchmark measures the same
 * through E.164 strings, as a load from Redis hands them over.
 */
import { describe, expect, it } from 'vitest';
import { measureReplicaMemory } from '../replica/memory.ts';

describe('replica memory', () => {
  it('holds 10 million subscribers in at most 40 bytes each (≈8 measured)', () => {
    const r = measureReplicaMemory(10_000_000, { viaStrings: false });
    console.log(`10M subscribers: ${r.bytesPerSubscriber.toFixed(2)} bytes/subscriber (heap +${r.heapDeltaBytes} B, array buffers +${r.arrayBuffersDeltaBytes} B), built in ${r.buildMs.toFixed(0)} ms, lookup ${r.lookupNs.toFixed(0)} ns`);
    expect(r.subscribers).toBe(10_000_000);
    expect(r.blocked).toBe(100_200); // every 100th number of each of the 300 area codes (334 each)
    // 300 area codes of 33,333 or 33,334 numbers: 65,536 slots of 4 bytes each (51% full).
    expect(r.arrayBytesPerSubscriber).toBe((300 * 65_536 * 4) / 10_000_000);
    expect(r.bytesPerSubscriber).toBeLessThanOrEqual(40);
    expect(r.bytesPerSubscriber).toBeGreaterThan(r.arrayBytesPerSubscriber * 0.95); // the heap may shrink a little between the two readings
  });
});
