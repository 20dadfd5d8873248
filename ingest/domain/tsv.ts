/**
 * TabSeparated text for the two ingest tables, built by hand: at a few
 * hundred thousand rows a second, JSON.stringify per row and Date#toISOString
 * per timestamp are a measurable share of the service's CPU. Instants are
 * written as core/clickhouse/datetime.ts says (13-digit epoch milliseconds,
 * else text): the engine's parsing is what bounds ingest throughput.
 */
import type { CallRow, RawEvent, Rejection } from './event.ts';
import type { LineBuffer } from './line-buffer.ts';
import { dateTime64Field, formatDateTime64, MS_13_DIGITS_MAX, MS_13_DIGITS_MIN } from '../../core/clickhouse/datetime.ts';

export { dateTime64Field, formatDateTime64 };

export const CALL_COLUMNS = [
  'call_id', 'source_number', 'target_number', 'started_at', 'ended_at', 'duration_ms',
  'source_country', 'target_country', 'call_class', 'ingested_at',
] as const;

export const REJECTION_COLUMNS = [
  'received_at', 'call_id', 'source_number', 'target_number', 'started_at', 'ended_at', 'field', 'reason',
] as const;

const NEEDS_ESCAPE = /[\t\n\r\\\0]/;
const ESCAPES: Record<string, string> = { '\t': '\\t', '\n': '\\n', '\r': '\\r', '\\': '\\\\', '\0': '\\0' };

/** TSV field escaping: the common case (nothing to escape) costs one regex test. */
export function escapeTsv(s: string): string {
  return NEEDS_ESCAPE.test(s) ? s.replace(/[\t\n\r\\\0]/g, (c) => ESCAPES[c]!) : s;
}

const TAB = 9;
const LF = 10;
/** Bytes a TabSeparated field of this UTF-16 unit needs escaped: 0 when it needs none. */
const ESCAPED_BYTE = new Uint8Array(128);
ESCAPED_BYTE[9] = 0x74; ESCAPED_BYTE[10] = 0x6e; ESCAPED_BYTE[13] = 0x72; ESCAPED_BYTE[92] = 0x5c; ESCAPED_BYTE[0] = 0x30;

/**
 * One `calls` line (CALL_COLUMNS order) written straight into `out`, field
 * by field. Only call_id can hold arbitrary text (TSV-escaped); numbers and
 * classes passed validation, so they are written as they are. Building the
 * line as a string and then encoding it cost about 2 µs per call, most of
 * the service's per-call time. ASCII is copied byte by byte (ids and numbers
 * are short); an id with other characters takes the string path for that
 * field. Returns the offset the line starts at.
 */
export function appendCallLine(out: LineBuffer, r: CallRow, ingestedAt: string): number {
  const start = out.len;
  // Every field but call_id is ASCII of bounded length: numbers (≤ 16),
  // three 13-digit instants, a duration, countries and a class (≤ 16).
  out.ensure(r.callId.length * 6 + 160 + ingestedAt.length);
  const b = out.buf;
  let p = start;
  const id = r.callId;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c >= 0x80) { p = writeEscapedUtf8(b, p, id.slice(i)); break; }
    const e = ESCAPED_BYTE[c]!;
    if (e !== 0 || c === 0) { b[p++] = 0x5c; b[p++] = e; } else b[p++] = c;
  }
  b[p++] = TAB;
  p = ascii(b, p, r.source);
  b[p++] = TAB;
  p = ascii(b, p, r.target);
  b[p++] = TAB;
  p = instant(b, p, r.startMs);
  b[p++] = TAB;
  p = instant(b, p, r.endMs);
  b[p++] = TAB;
  p = digits(b, p, r.durationMs);
  b[p++] = TAB;
  p = ascii(b, p, r.sourceCountry);
  b[p++] = TAB;
  p = ascii(b, p, r.targetCountry);
  b[p++] = TAB;
  p = ascii(b, p, r.callClass);
  b[p++] = TAB;
  p = ascii(b, p, ingestedAt);
  b[p++] = LF;
  out.len = p;
  return start;
}

function writeEscapedUtf8(b: Buffer, p: number, s: string): number {
  return p + b.write(escapeTsv(s), p, 'utf8');
}

/** A string known to be ASCII with nothing to escape (validated numbers, classes, instants). */
function ascii(b: Buffer, p: number, s: string): number {
  for (let i = 0; i < s.length; i++) b[p++] = s.charCodeAt(i);
  return p;
}

/** A non-negative integer in decimal (exact below 2^53). */
function digits(b: Buffer, p: number, n: number): number {
  if (n < 1e9) return smallDigits(b, p, n, 0);
  // Two int32 halves: integer division by 10 on int32 compiles to a multiply.
  const hi = Math.floor(n / 1e9);
  return smallDigits(b, smallDigits(b, p, hi, 0), n - hi * 1e9, 9);
}

/** 0 <= n < 1e9 in decimal, left-padded with zeros to `width` digits. */
function smallDigits(b: Buffer, p: number, n: number, width: number): number {
  let x = n | 0;
  let len = 1;
  for (let y = x; y >= 10; y = (y / 10) | 0) len++;
  if (len < width) len = width;
  for (let i = p + len - 1; i >= p; i--) {
    const q = (x / 10) | 0;
    b[i] = 48 + x - q * 10;
    x = q;
  }
  return p + len;
}

function instant(b: Buffer, p: number, ms: number): number {
  return ms >= MS_13_DIGITS_MIN && ms < MS_13_DIGITS_MAX ? digits(b, p, ms) : ascii(b, p, formatDateTime64(ms));
}

/** One `rejected_calls` line: every raw field escaped, since none passed validation. */
export function rejectionLine(rej: Rejection, raw: RawEvent, receivedAt: string): string {
  return `${receivedAt}\t${escapeTsv(raw.call_id)}\t${escapeTsv(raw.source_number)}\t${escapeTsv(raw.target_number)}\t${escapeTsv(raw.start)}\t${escapeTsv(raw.end)}\t${rej.field}\t${escapeTsv(rej.reason)}\n`;
}
