/**
 * Reads a bulk-load file of call records, CSV (header
 * `call_id,source_number,target_number,start,end`) or NDJSON (one object per
 * line with the same keys), streaming, and turns each line into the event to
 * send, with its line number.
 *
 * A line the CLI cannot fully read is still sent (the rule is that nothing the
 * switch produced is silently dropped): a bad timestamp travels unset, so the
 * service rejects the event and keeps it in rejected_calls with its call_id
 * and numbers; a line that cannot even be split into fields travels with its
 * raw text in source_number and no call_id. The precise local reason (with the
 * offending text and the line number) is returned alongside for the summary.
 */
import fs from 'node:fs';
import readline from 'node:readline';
import { parse, type CsvError } from 'csv-parse';
import { millisToTimestamp } from '../../core/grpc/proto.ts';
import { parseInstant } from './rfc3339.ts';
import type { WireEvent } from './ingest-client.ts';

export type CdrFormat = 'csv' | 'ndjson';
export const CDR_COLUMNS = ['call_id', 'source_number', 'target_number', 'start', 'end'] as const;

export interface CdrLine {
  /** 1-based line number in the file (the header is line 1 of a CSV). */
  line: number;
  event: WireEvent;
  /** Known before sending: why the service will reject this line. */
  problem?: { field: string; reason: string };
}

export class CdrFileError extends Error {
  override name = 'CdrFileError';
}

/** Raw text kept when a line is unreadable; long enough to recognise, short enough for a row. */
const RAW_KEEP = 1000;

export function formatFromPath(file: string): CdrFormat | undefined {
  const f = file.toLowerCase().replace(/\.gz$/, '');
  if (f.endsWith('.csv')) return 'csv';
  if (f.endsWith('.ndjson') || f.endsWith('.jsonl') || f.endsWith('.json')) return 'ndjson';
  return undefined;
}

type Fields = Record<(typeof CDR_COLUMNS)[number], unknown>;

/** Fields of one readable line → event, with the first local problem (timestamps only: the service judges the rest). */
export function toEvent(line: number, f: Fields): CdrLine {
  const text = (k: keyof Fields): string | { bad: string } => {
    const v = f[k];
    if (v === undefined || v === null) return '';
    if (typeof v === 'string') return v;
    if (typeof v === 'number' || typeof v === 'bigint') return String(v);
    return { bad: `must be a string, got ${Array.isArray(v) ? 'an array' : typeof v}` };
  };
  let problem: CdrLine['problem'];
  const str = (k: keyof Fields): string => {
    const t = text(k);
    if (typeof t === 'string') return t;
    problem ??= { field: k, reason: t.bad };
    return '';
  };
  const event: WireEvent = { call_id: str('call_id'), source_number: str('source_number'), target_number: str('target_number'), start: null, end: null };
  for (const k of ['start', 'end'] as const) {
    const t = str(k);
    const r = parseInstant(t);
    if (r.ok) event[k] = millisToTimestamp(r.ms);
    else problem ??= { field: k, reason: r.reason };
  }
  return problem ? { line, event, problem } : { line, event };
}

function unreadable(line: number, raw: string, reason: string): CdrLine {
  return {
    line,
    event: { call_id: '', source_number: raw.slice(0, RAW_KEEP), target_number: '', start: null, end: null },
    problem: { field: 'line', reason },
  };
}

/**
 * Streams the lines of `file`. `onBytes` gets the bytes consumed so far (for
 * a progress bar by file size).
 */
export async function* readCdrFile(file: string, format: CdrFormat, onBytes?: (bytes: number) => void): AsyncGenerator<CdrLine> {
  if (format === 'csv') yield* readCsv(file, onBytes);
  else yield* readNdjson(file, onBytes);
}

async function* readCsv(file: string, onBytes?: (bytes: number) => void): AsyncGenerator<CdrLine> {
  const skipped: CdrLine[] = [];
  const parser = parse({
    bom: true,
    columns: (header: string[]) => {
      const names = header.map((h) => h.trim());
      const missing = CDR_COLUMNS.filter((c) => !names.includes(c));
      if (missing.length) throw new CdrFileError(`${file}: the CSV header must name ${CDR_COLUMNS.join(',')}; missing: ${missing.join(', ')} (header was: ${names.join(',')})`);
      return names;
    },
    trim: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    raw: true,
    info: true,
    on_skip: (err: CsvError | undefined, raw: string | undefined) => {
      const e = err as (CsvError & { lines?: number }) | undefined;
      skipped.push(unreadable(e?.lines ?? 0, (raw ?? '').replace(/^[\r\n]+|[\r\n]+$/g, ''), `unreadable CSV: ${e?.message ?? 'malformed record'}`));
      return undefined;
    },
  });
  const input = fs.createReadStream(file);
  input.on('error', (e) => parser.destroy(e));
  input.pipe(parser);
  try {
    for await (const rec of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number; bytes: number } }>) {
      // The parser reports a skipped line as soon as it reads it, which can be
      // before earlier records reach this loop: keep file order.
      while (skipped.length && skipped[0]!.line < rec.info.lines) yield skipped.shift()!;
      onBytes?.(rec.info.bytes);
      yield toEvent(rec.info.lines, rec.record as unknown as Fields);
    }
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err instanceof CdrFileError || err.code === 'ENOENT' || err.code === 'EACCES' || err.code === 'EISDIR') throw e;
    // A CSV error the parser cannot skip past (for example an unclosed quote at the end of the file).
    throw new CdrFileError(`${file}: ${err.message}`);
  } finally {
    input.destroy();
  }
  while (skipped.length) yield skipped.shift()!;
  onBytes?.(input.bytesRead);
}

async function* readNdjson(file: string, onBytes?: (bytes: number) => void): AsyncGenerator<CdrLine> {
  const input = fs.createReadStream(file, { encoding: 'utf8' });
  const rl = readline.createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  let n = 0;
  try {
    for await (const raw of rl) {
      line++;
      if (line === 1 && raw.charCodeAt(0) === 0xfeff) { yield* one(raw.slice(1)); continue; }
      yield* one(raw);
      if ((++n & 1023) === 0) onBytes?.(input.bytesRead);
    }
  } finally {
    rl.close();
    input.destroy();
  }
  onBytes?.(input.bytesRead);

  function* one(raw: string): Generator<CdrLine> {
    if (raw.trim() === '') return;
    let v: unknown;
    try { v = JSON.parse(raw); } catch (e) { yield unreadable(line, raw, `not JSON: ${(e as Error).message}`); return; }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) { yield unreadable(line, raw, 'not a JSON object'); return; }
    yield toEvent(line, v as Fields);
  }
}
