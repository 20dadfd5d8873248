/**
 * The replica's memory with 10 million subscribers (1% blocked): at most
 * 40 bytes per subscriber (the bound). Deterministic: the number
 * sets are exactly sized typed arrays, 4 bytes per number. The builders get
 * numeric keys here to keep the test quick; the benchmark measures the same
 * through E.164 strings, as a load from Redis hands them over.
 */
import { describe, expect, it } from 'vitest';
import { measureReplicaMemory } from '../replica/memory.ts';

describe('replica memory', () => {
  it('holds 10 million subscribers in at most 40 bytes each (≈4 measured)', () => {
    const r = measureReplicaMemory(10_000_000, { viaStrings: false });
    console.log(`10M subscribers: ${r.bytesPerSubscriber.toFixed(2)} bytes/subscriber (heap +${r.heapDeltaBytes} B, array buffers +${r.arrayBuffersDeltaBytes} B), built in ${r.buildMs.toFixed(0)} ms, lookup ${r.lookupNs.toFixed(0)} ns`);
    expect(r.subscribers).toBe(10_000_000);
    expect(r.blocked).toBe(100_000);
    // The arrays alone: 4 bytes per subscriber and per blocked number.
    expect(r.arrayBytesPerSubscriber).toBe(4.04);
    expect(r.bytesPerSubscriber).toBeLessThanOrEqual(40);
    expect(r.bytesPerSubscriber).toBeGreaterThanOrEqual(4);
  });
});
