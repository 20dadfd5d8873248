/**
 * TabSeparated text for the two ingest tables, built by hand: at a few
 * hundred thousand rows a second, JSON.stringify per row and Date#toISOString
 * per timestamp are a measurable share of the service's CPU.
 *
 * Timestamps: ClickHouse reads a 13-digit integer as epoch milliseconds
 * under every date_time_input_format (basic, best_effort, best_effort_us),
 * and parses it about three times faster than 'YYYY-MM-DD hh:mm:ss.sss'
 * (the engine's parsing is what bounds ingest throughput). Shorter integers
 * are ambiguous (read as seconds, or refused), so instants before
 * 2001-09-09T01:46:40Z are written as text.
 */
import type { CallRow, RawEvent, Rejection } from './event.ts';

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

const PAD2: string[] = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const PAD3: string[] = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
const DAY_MS = 86_400_000;

// Calls cluster on a few days: 'YYYY-MM-DD ' is formatted once per day and
// kept in a small direct-mapped cache (a pure function of its input).
const DAY_SLOTS = 128;
const cachedDay = new Float64Array(DAY_SLOTS).fill(NaN);
const cachedDayText: string[] = new Array<string>(DAY_SLOTS).fill('');

function dayText(day: number): string {
  const slot = day & (DAY_SLOTS - 1);
  if (cachedDay[slot] !== day) {
    cachedDay[slot] = day;
    cachedDayText[slot] = `${new Date(day * DAY_MS).toISOString().slice(0, 10)} `;
  }
  return cachedDayText[slot]!;
}

/** 'YYYY-MM-DD hh:mm:ss.sss' in UTC, for 0 <= ms (validated upstream). */
export function formatDateTime64(ms: number): string {
  const day = Math.floor(ms / DAY_MS);
  let rest = ms - day * DAY_MS;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = Math.floor(rest / 1000);
  return `${dayText(day)}${PAD2[h]}:${PAD2[m]}:${PAD2[s]}.${PAD3[rest - s * 1000]}`;
}

const MS_13_DIGITS_MIN = 1e12;
const MS_13_DIGITS_MAX = 1e13;

/** A DateTime64(3) field: epoch milliseconds when 13 digits long, else text. */
export function dateTime64Field(ms: number): string {
  return ms >= MS_13_DIGITS_MIN && ms < MS_13_DIGITS_MAX ? String(ms) : formatDateTime64(ms);
}

/**
 * One `calls` line. Only call_id can hold arbitrary text: numbers and
 * classes passed validation, so they are written as they are.
 */
export function callLine(r: CallRow, ingestedAt: string): string {
  return `${escapeTsv(r.callId)}\t${r.source}\t${r.target}\t${dateTime64Field(r.startMs)}\t${dateTime64Field(r.endMs)}\t${r.durationMs}\t${r.sourceCountry}\t${r.targetCountry}\t${r.callClass}\t${ingestedAt}\n`;
}

/** One `rejected_calls` line: every raw field escaped, since none passed validation. */
export function rejectionLine(rej: Rejection, raw: RawEvent, receivedAt: string): string {
  return `${receivedAt}\t${escapeTsv(raw.call_id)}\t${escapeTsv(raw.source_number)}\t${escapeTsv(raw.target_number)}\t${escapeTsv(raw.start)}\t${escapeTsv(raw.end)}\t${rej.field}\t${escapeTsv(rej.reason)}\n`;
}
