/** The hand-written request decoders agree with proto-loader on arbitrary messages. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { phonebillV1 } from '../../core/grpc/proto.ts';
import { decodeCallBatch, decodeCallEndEvent } from '../transport/decode.ts';

const svc = phonebillV1().Ingest.service;
const serializeEvent = svc.RecordCall!.requestSerialize as (v: unknown) => Buffer;
const deserializeEvent = svc.RecordCall!.requestDeserialize as (b: Buffer) => unknown;
const serializeBatch = svc.RecordCallBatches!.requestSerialize as (v: unknown) => Buffer;
const deserializeBatch = svc.RecordCallBatches!.requestDeserialize as (b: Buffer) => unknown;

const int64 = fc.bigInt({ min: -(2n ** 53n) + 1n, max: 2n ** 53n - 1n });
const timestamp = fc.option(fc.record({ seconds: int64.map(String), nanos: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) }), { nil: null });
const event = fc.record({
  call_id: fc.string({ unit: 'binary' }),
  source_number: fc.string(),
  target_number: fc.string({ maxLength: 3 }),
  start: timestamp,
  end: timestamp,
});

/** proto-loader's output with int64 as numbers, the one intended difference. */
const normal = (v: unknown): unknown => JSON.parse(JSON.stringify(v), (k, x) => (k === 'seconds' ? Number(x) : x));

describe('request decoders', () => {
  it('decode CallEndEvent like proto-loader', () => {
    fc.assert(fc.property(event, (ev) => {
      const buf = serializeEvent(ev);
      expect(normal(decodeCallEndEvent(buf))).toEqual(normal(deserializeEvent(buf)));
    }), { numRuns: 2000 });
  });

  it('decode CallBatch like proto-loader', () => {
    fc.assert(fc.property(fc.array(event, { maxLength: 20 }), (calls) => {
      const buf = serializeBatch({ calls });
      expect(normal(decodeCallBatch(buf))).toEqual(normal(deserializeBatch(buf)));
    }), { numRuns: 500 });
  });

  it('skip unknown fields of every wire type, and fill absent fields with defaults', () => {
    // field 9 varint 300, field 10 fixed64, field 11 bytes "zz", field 12 fixed32, then call_id "a"
    const unknown = Buffer.from('48ac02' + '51' + '0102030405060708' + '5a027a7a' + '65' + '01020304' + '0a0161', 'hex');
    expect(decodeCallEndEvent(unknown)).toEqual({ call_id: 'a', source_number: '', target_number: '', start: null, end: null });
    expect(decodeCallEndEvent(Buffer.alloc(0))).toEqual({ call_id: '', source_number: '', target_number: '', start: null, end: null });
    expect(decodeCallBatch(Buffer.alloc(0))).toEqual({ calls: [] });
  });

  it('refuse truncated input', () => {
    const buf = serializeEvent({ call_id: 'abcdef', start: { seconds: '1764417600', nanos: 5 } });
    expect(() => decodeCallEndEvent(buf.subarray(0, buf.length - 2))).toThrow(RangeError);
    expect(() => decodeCallBatch(Buffer.from([0x0a, 0x05, 0x0a]))).toThrow(RangeError);
  });
});
