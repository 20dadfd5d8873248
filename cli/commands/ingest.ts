/**
 * `phonebill ingest FILE`: bulk-loads a CSV or NDJSON file of call records
 * into the running ingest service over gRPC (RecordCallBatches), with a
 * progress bar and a summary of what the service accepted, found duplicate
 * and rejected.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import type { CliCommand } from '../command.ts';
import { loadConfig, ConfigError } from '../../core/config.ts';
import { CdrFileError, formatFromPath, readCdrFile, type CdrFormat, type CdrLine } from '../lib/cdr-file.ts';
import { connectIngest, IngestUnreachable, sendStreams, StreamFailed, type IngestResponse, type SendTotals, type WireEvent } from '../lib/ingest-client.ts';
import { fmtInt } from '../lib/table.ts';

const usage = `Usage: phonebill ingest FILE [options]

Sends the call records in FILE to the running ingest service over gRPC
(RecordCallBatches) and prints what it accepted, found duplicate and rejected.

FILE is CSV with the header call_id,source_number,target_number,start,end or
NDJSON (one JSON object per line with the same keys); start and end are
RFC 3339 instants with an offset, e.g. 2026-10-14T18:03:07.250-04:00.

Options:
  --addr HOST:PORT      ingest service (default 127.0.0.1:INGEST_PORT, i.e. 127.0.0.1:50052)
  --format csv|ndjson   file format (default: from the extension .csv, .ndjson/.jsonl)
  --batch N             calls per gRPC message (default 1000)
  --streams N           concurrent streams (default 2)
  --stream-events N     events per stream before it is closed and acknowledged (default 100000)
  --show N              rejections listed in the summary (default 10)
  --no-progress         no progress bar or progress lines

Every line is sent, even one the CLI cannot read: a bad timestamp travels
unset and an unreadable line travels with its raw text in source_number, so
the service rejects it and keeps it in rejected_calls. The summary lists
rejections by line number with the precise reason.

Sending a file twice is safe: call_ids already stored count as duplicates.

Exit status: 0 when every event was acknowledged (rejections included),
1 when the service is unreachable or a stream failed, 2 on bad usage or an
unreadable file.`;

interface Item {
  calls: WireEvent[];
  lines: number[];
  problems: Map<number, { field: string; reason: string }>;
}

interface Shown { line: number; call_id: string; field: string; reason: string }

function args(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      addr: { type: 'string' },
      format: { type: 'string' },
      batch: { type: 'string', default: '1000' },
      streams: { type: 'string', default: '2' },
      'stream-events': { type: 'string', default: '100000' },
      show: { type: 'string', default: '10' },
      'no-progress': { type: 'boolean', default: false },
    },
  });
}

function positiveInt(name: string, s: string, max: number): number {
  if (!/^\d+$/.test(s) || Number(s) < 1 || Number(s) > max) throw new UsageError(`--${name} must be an integer from 1 to ${max}, got ${JSON.stringify(s)}`);
  return Number(s);
}

class UsageError extends Error {}

async function* batchesOf(lines: AsyncIterable<CdrLine>, size: number, seen: { events: number; unreadable: number }): AsyncGenerator<Item> {
  let cur: Item = { calls: [], lines: [], problems: new Map() };
  for await (const l of lines) {
    seen.events++;
    if (l.problem) { seen.unreadable++; cur.problems.set(l.line, l.problem); }
    cur.calls.push(l.event);
    cur.lines.push(l.line);
    if (cur.calls.length >= size) { yield cur; cur = { calls: [], lines: [], problems: new Map() }; }
  }
  if (cur.calls.length) yield cur;
}

/** Keeps the `limit` rejections with the smallest line numbers. */
class FirstRejections {
  private list: Shown[] = [];
  constructor(private readonly limit: number) {}
  add(s: Shown) {
    this.list.push(s);
    if (this.list.length > this.limit * 2) this.trim();
  }
  private trim() { this.list.sort((a, b) => a.line - b.line); this.list.length = Math.min(this.list.length, this.limit); }
  get items(): Shown[] { this.trim(); return this.list; }
}

/** Matches a stream's rejections (by call_id, in order) back to file lines, preferring the CLI's own reason. */
function recordRejections(res: IngestResponse, items: readonly Item[], first: FirstRejections): void {
  if (!res.rejections.length) return;
  const linesById = new Map<string, number[]>();
  const problems = new Map<number, { field: string; reason: string }>();
  for (const it of items) {
    it.calls.forEach((c, i) => {
      const l = linesById.get(c.call_id);
      if (l) l.push(it.lines[i]!); else linesById.set(c.call_id, [it.lines[i]!]);
    });
    for (const [k, v] of it.problems) problems.set(k, v);
  }
  for (const r of res.rejections) {
    const line = linesById.get(r.call_id)?.shift() ?? 0;
    const local = problems.get(line);
    first.add({ line, call_id: r.call_id, field: local?.field ?? r.field, reason: local?.reason ?? r.reason });
  }
}

function progressReporter(file: string, totalBytes: number, enabled: boolean) {
  const t0 = Date.now();
  let rows = 0;
  let bytes = 0;
  const rate = () => rows / Math.max(0.001, (Date.now() - t0) / 1000);
  if (!enabled) return { rows: (n: number) => { rows += n; }, bytes: (b: number) => { bytes = b; }, stop: () => {} };
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar({
      stream: process.stderr,
      format: `${path.basename(file)} {bar} {percentage}% | {rows} rows | {rate} rows/s | ETA {eta_formatted}`,
      hideCursor: true,
      etaBuffer: 50,
    }, cliProgress.Presets.shades_classic);
    bar.start(Math.max(1, totalBytes), 0, { rows: '0', rate: '0' });
    const timer = setInterval(() => bar.update(bytes, { rows: fmtInt(rows), rate: fmtInt(rate()) }), 200);
    return {
      rows: (n: number) => { rows += n; },
      bytes: (b: number) => { bytes = b; },
      stop: () => { clearInterval(timer); bar.update(bytes, { rows: fmtInt(rows), rate: fmtInt(rate()) }); bar.stop(); },
    };
  }
  const timer = setInterval(() => {
    const pct = totalBytes ? ` (${Math.min(100, Math.round((bytes / totalBytes) * 100))}% of the file)` : '';
    process.stderr.write(`ingest: ${fmtInt(rows)} rows sent${pct}, ${fmtInt(rate())} rows/s\n`);
  }, 5000);
  timer.unref();
  return { rows: (n: number) => { rows += n; }, bytes: (b: number) => { bytes = b; }, stop: () => clearInterval(timer) };
}

function printSummary(o: { file: string; format: CdrFormat; totals: SendTotals; seconds: number; unreadable: number; first: Shown[]; db: string; complete: boolean }): void {
  const t = o.totals;
  const out = [
    `${o.file} (${o.format}): ${fmtInt(t.sent)} events sent in ${o.seconds.toFixed(1)} s (${fmtInt(t.sent / Math.max(0.001, o.seconds))} events/s) over ${t.streams} stream${t.streams === 1 ? '' : 's'}`,
    `  accepted    ${fmtInt(t.accepted).padStart(12)}  new calls, durable in ClickHouse`,
    `  duplicates  ${fmtInt(t.duplicates).padStart(12)}  call_ids already recorded (or repeated in the file)`,
    `  rejected    ${fmtInt(t.rejected).padStart(12)}  kept in ${o.db}.rejected_calls with field and reason`,
  ];
  if (o.unreadable) out.push(`              ${' '.repeat(12)}  (${fmtInt(o.unreadable)} of them could not be read by the CLI; sent anyway so the service keeps them)`);
  if (!o.complete) out.push(`  not acknowledged ${fmtInt(t.sent - t.acknowledged).padStart(7)}  sent, but the stream broke before the service confirmed them`);
  if (o.first.length) {
    out.push(`first rejections (by line):`);
    for (const r of o.first) {
      const id = r.call_id ? JSON.stringify(r.call_id.length > 40 ? `${r.call_id.slice(0, 37)}...` : r.call_id) : '(none)';
      out.push(`  line ${String(r.line || '?').padStart(7)}  call_id ${id}  ${r.field}: ${r.reason}`);
    }
    out.push(`all rejections: phonebill sql "SELECT field, reason, count() AS n FROM ${o.db}.rejected_calls GROUP BY field, reason ORDER BY n DESC"`);
  }
  console.log(out.join('\n'));
}

export const command: CliCommand = {
  summary: 'bulk-load a CSV or NDJSON file of call records through the ingest service',
  usage,
  async run(argv) {
    let a, cfg;
    try {
      a = args(argv);
      cfg = loadConfig();
    } catch (e) {
      console.error(`phonebill ingest: ${(e as Error).message}${e instanceof ConfigError ? '' : `\n\n${usage}`}`);
      return 2;
    }
    let file: string, format: CdrFormat, batch: number, streams: number, perStream: number, show: number;
    try {
      if (a.positionals.length !== 1) throw new UsageError('give exactly one FILE');
      file = a.positionals[0]!;
      const f = a.values.format ?? formatFromPath(file);
      if (f !== 'csv' && f !== 'ndjson') throw new UsageError(a.values.format ? `--format must be csv or ndjson, got ${JSON.stringify(a.values.format)}` : `cannot tell the format of ${file} from its extension: pass --format csv or --format ndjson`);
      format = f;
      batch = positiveInt('batch', a.values.batch!, 100_000);
      streams = positiveInt('streams', a.values.streams!, 64);
      perStream = positiveInt('stream-events', a.values['stream-events']!, 100_000_000);
      show = positiveInt('show', a.values.show!, 100_000);
      const st = fs.statSync(file, { throwIfNoEntry: false });
      if (!st) throw new UsageError(`${file}: no such file`);
      if (!st.isFile()) throw new UsageError(`${file}: not a file`);
      fs.accessSync(file, fs.constants.R_OK);
    } catch (e) {
      console.error(`phonebill ingest: ${(e as Error).message}${e instanceof UsageError ? `\n(run \`phonebill ingest --help\`)` : ''}`);
      return 2;
    }
    const addr = a.values.addr ?? `127.0.0.1:${cfg.ingestPort}`;

    let client;
    try {
      client = await connectIngest(addr);
    } catch (e) {
      if (!(e instanceof IngestUnreachable)) throw e;
      console.error(`phonebill ingest: ${e.message}.\nStart the stack with \`npm start\` (or pass --addr HOST:PORT of a running ingest service). Nothing was sent.`);
      return 1;
    }

    const size = fs.statSync(file).size;
    const progress = progressReporter(file, size, !a.values['no-progress']);
    const seen = { events: 0, unreadable: 0 };
    const first = new FirstRejections(show);
    const t0 = Date.now();
    let totals: SendTotals;
    let failure: StreamFailed | undefined;
    try {
      totals = await sendStreams<Item>({
        client,
        method: 'RecordCallBatches',
        source: batchesOf(readCdrFile(file, format, progress.bytes), batch, seen),
        count: (it) => it.calls.length,
        streams,
        eventsPerStream: perStream,
        onWritten: progress.rows,
        onResponse: (res, items) => recordRejections(res, items, first),
      });
    } catch (e) {
      if (!(e instanceof StreamFailed)) throw e;
      failure = e;
      totals = e.totals;
    } finally {
      progress.stop();
      client.close();
    }
    const seconds = (Date.now() - t0) / 1000;
    if (failure?.cause instanceof CdrFileError && totals.sent === 0) {
      console.error(`phonebill ingest: ${failure.cause.message}`);
      return 2;
    }
    printSummary({ file, format, totals, seconds, unreadable: seen.unreadable, first: first.items, db: cfg.clickhouseDatabase, complete: !failure });
    if (failure) {
      const cause = failure.cause instanceof Error ? failure.cause.message : String(failure.cause);
      console.error(failure.cause instanceof CdrFileError
        ? `phonebill ingest: stopped reading: ${cause}. What was acknowledged above is stored; fix the file and send it again (stored call_ids count as duplicates).`
        : `phonebill ingest: a stream to ${addr} failed: ${cause}.\n`
          + `${fmtInt(failure.unacknowledged)} events were not acknowledged and may or may not be stored. `
          + 'Once the service is back (`npm start`), send the whole file again: call_ids already stored count as duplicates, so nothing is stored twice.');
      return failure.cause instanceof CdrFileError ? 2 : 1;
    }
    return 0;
  },
};
