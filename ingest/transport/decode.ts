/**
 * Protobuf decoding of the two ingest request messages straight into the
 * shape the service validates, replacing proto-loader's generic path on the
 * hot path. proto-loader decodes each message into protobufjs objects, then
 * copies them into plain objects, turning every int64 into a Long and then a
 * string: about a quarter of the service's main-thread time and most of its
 * short-lived garbage at hundreds of thousands of calls a second.
 *
 * The result matches proto-loader with the shared options (absent strings
 * are '', absent messages null), except that Timestamp.seconds is a number,
 * which Timestamp allows. Unknown fields are skipped, as protobuf requires.
 * A property test checks it against proto-loader on arbitrary messages.
 *
 * Written for speed (measured with bench/ingest/hot-path.ts): the cursor is
 * module state rather than an object per message, varints take a one-byte
 * fast path (every tag and length of a CallEndEvent fits in one), and short
 * ASCII strings are decoded as latin1, which skips UTF-8 validation. Decoding is
 * synchronous and never re-entered, so the shared cursor is safe.
 */
import type { Timestamp } from '../../core/grpc/proto.ts';
import type { CallEndEvent } from '../domain/event.ts';

const TWO_32 = 4294967296;

let buf: Buffer = Buffer.alloc(0);
let pos = 0;

/** A varint's low 32 bits, as an unsigned number (tags, lengths, int32 fields via `| 0`). */
function uint32(end: number): number {
  if (pos < end) {
    const b0 = buf[pos]!;
    if (b0 < 0x80) { pos++; return b0; }
  }
  return uint32Slow(end);
}

function uint32Slow(end: number): number {
  let v = 0;
  let mul = 1;
  for (let i = 0; ; i++) {
    if (pos >= end) throw new RangeError('truncated varint');
    const byte = buf[pos++]!;
    if (i < 5) { v += (byte & 0x7f) * mul; mul *= 128; }
    if (byte < 0x80) break;
    if (i === 9) throw new RangeError('varint longer than 10 bytes');
  }
  return v % TWO_32;
}

/**
 * A varint as a signed 64-bit integer (exact within ±2^53, far beyond any
 * Timestamp). Up to 7 bytes (49 bits: every instant a switch can report) are
 * summed with exact float arithmetic; longer ones (negative or huge) take
 * the two-halves path.
 */
function int64(end: number): number {
  let v = 0;
  let mul = 1;
  const p0 = pos;
  for (let i = 0; i < 7; i++) {
    if (pos >= end) throw new RangeError('truncated varint');
    const byte = buf[pos++]!;
    v += (byte & 0x7f) * mul;
    if (byte < 0x80) return v;
    mul *= 128;
  }
  pos = p0;
  return int64Slow(end);
}

function int64Slow(end: number): number {
  let lo = 0;
  let hi = 0;
  let shift = 0;
  for (;;) {
    if (pos >= end) throw new RangeError('truncated varint');
    const byte = buf[pos++]!;
    const bits = byte & 0x7f;
    if (shift < 28) lo += bits * 2 ** shift;
    else if (shift === 28) { lo += (bits & 0x0f) * 2 ** 28; hi += bits >>> 4; }
    else hi += bits * 2 ** (shift - 32);
    if (byte < 0x80) break;
    shift += 7;
    if (shift > 63) throw new RangeError('varint longer than 10 bytes');
  }
  hi = hi % TWO_32;
  return (hi | 0) * TWO_32 + lo;
}

function bytesEnd(end: number): number {
  const len = uint32(end);
  const e = pos + len;
  if (e > end) throw new RangeError('truncated length-delimited field');
  return e;
}

function string(end: number): string {
  const e = bytesEnd(end);
  const start = pos;
  pos = e;
  for (let i = start; i < e; i++) if (buf[i]! >= 0x80) return buf.toString('utf8', start, e);
  return buf.toString('latin1', start, e);
}

function skip(wireType: number, end: number): void {
  switch (wireType) {
    case 0: uint32(end); return;
    case 1: pos += 8; break;
    case 2: pos = bytesEnd(end); return;
    case 5: pos += 4; break;
    default: throw new RangeError(`unsupported wire type ${wireType}`);
  }
  if (pos > end) throw new RangeError('truncated fixed-width field');
}

function readTimestamp(end: number, into: Timestamp | null | undefined): Timestamp {
  const e = bytesEnd(end);
  const t: Timestamp = into ?? { seconds: 0, nanos: 0 };
  while (pos < e) {
    const tag = uint32(e);
    if (tag === 0x08) t.seconds = int64(e);
    else if (tag === 0x10) t.nanos = uint32(e) | 0;
    else skip(tag & 7, e);
  }
  return t;
}

function readEvent(end: number): CallEndEvent {
  const ev: CallEndEvent = { call_id: '', source_number: '', target_number: '', start: null, end: null };
  while (pos < end) {
    const tag = uint32(end);
    switch (tag) {
      case 0x0a: ev.call_id = string(end); break;
      case 0x12: ev.source_number = string(end); break;
      case 0x1a: ev.target_number = string(end); break;
      case 0x22: ev.start = readTimestamp(end, ev.start); break;
      case 0x2a: ev.end = readTimestamp(end, ev.end); break;
      default: skip(tag & 7, end);
    }
  }
  return ev;
}

/** phonebill.v1.CallEndEvent */
export function decodeCallEndEvent(b: Buffer): CallEndEvent {
  buf = b;
  pos = 0;
  try {
    return readEvent(b.length);
  } finally {
    buf = EMPTY;
  }
}

/** phonebill.v1.CallBatch */
export function decodeCallBatch(b: Buffer): { calls: CallEndEvent[] } {
  const calls: CallEndEvent[] = [];
  buf = b;
  pos = 0;
  try {
    const n = b.length;
    while (pos < n) {
      const tag = uint32(n);
      if (tag === 0x0a) {
        const end = bytesEnd(n);
        calls.push(readEvent(end));
        pos = end;
      } else {
        skip(tag & 7, n);
      }
    }
  } finally {
    buf = EMPTY;
  }
  return { calls };
}

const EMPTY = Buffer.alloc(0);
