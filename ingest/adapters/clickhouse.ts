/**
 * Every query the ingest service runs against ClickHouse; the only ingest
 * file that knows @clickhouse/client.
 */
import { Readable } from 'node:stream';
import type { ClickHouse } from '../../core/clickhouse/client.ts';
import { CALL_COLUMNS, REJECTION_COLUMNS, formatDateTime64 } from '../domain/tsv.ts';

/** One lookup: call_ids of a batch with the sources and the start range they came with. */
export interface LookupKeys {
  ids: string[];
  sources: string[];
  loMs: number;
  hiMs: number;
}

export interface CallStore {
  /** The subset of keys.ids already stored (same source, start within [lo, hi]). */
  lookupExisting(keys: LookupKeys): Promise<string[]>;
  /** Inserts TabSeparated `calls` lines (CALL_COLUMNS order); the buffer is not touched after the promise settles. */
  insertCalls(tsv: Buffer): Promise<void>;
  /** Inserts TabSeparated `rejected_calls` lines (REJECTION_COLUMNS order). */
  insertRejections(tsv: string): Promise<void>;
  /** Streams every stored (call_id, start) with start >= fromMs, a bounded chunk at a time. */
  scanIdsSince(fromMs: number, onId: (callId: string, startMs: number) => void): Promise<number>;
}

// A group-commit batch can hold calls from many months (bulk loads of old
// records); the default cap of 100 partitions per insert would fail the
// whole batch and every stream waiting on it.
const INSERT_SETTINGS = { max_partitions_per_insert_block: 0, input_format_parallel_parsing: 0 } as const;

/** Rows per warm-up query, so the materialised result stays a few tens of MB. */
const SCAN_CHUNK_ROWS = 1_000_000;

/** The part of chdb's connection extension used here (chdb/connection's `.chdb`). */
interface ChdbRawInsert {
  rawInsert(p: { table: string; columns: readonly string[]; values: Buffer; format: 'TabSeparated'; settings: Record<string, number> }): Promise<unknown>;
}

/**
 * The embedded engine's zero-copy insert, when `ch` runs on chdb. Through
 * @clickhouse/client a chdb insert turns its body into V8 strings three
 * times (stream to string, statement plus body, native copy): at several
 * MB per flush those are large-object-space garbage that grew the heap by
 * hundreds of MB under load. rawInsert hands the Buffer to the engine as is.
 * The chdb connection is not part of the client's public surface, hence the
 * duck-typed lookup; without it (a server, or a future client) the portable
 * path is used.
 */
function chdbRawInsert(ch: ClickHouse): ChdbRawInsert | undefined {
  if (!ch.embedded) return undefined;
  const ext = (ch as { chdb?: unknown }).chdb
    ?? (ch.client as unknown as { connection?: { chdb?: unknown } }).connection?.chdb;
  return ext && typeof (ext as ChdbRawInsert).rawInsert === 'function' ? (ext as ChdbRawInsert) : undefined;
}

export function createClickHouseCallStore(ch: ClickHouse): CallStore {
  const calls = ch.table('calls');
  const raw = chdbRawInsert(ch);

  const insertTsv = async (table: string, columns: readonly string[], tsv: Buffer) => {
    if (tsv.length === 0) return;
    if (raw) {
      // chdb validates the name as a plain identifier path (no backquotes); both parts are validated identifiers.
      await raw.rawInsert({ table: `${ch.database}.${table}`, columns, values: tsv, format: 'TabSeparated', settings: INSERT_SETTINGS });
      return;
    }
    await ch.client.insert({
      table: ch.table(table),
      columns: columns as [string, ...string[]],
      format: 'TabSeparated',
      // The client refuses a plain string for TabSeparated; one chunk, not object mode.
      values: Readable.from([tsv], { objectMode: false }),
      clickhouse_settings: { max_partitions_per_insert_block: String(INSERT_SETTINGS.max_partitions_per_insert_block) },
    });
  };

  return {
    async lookupExisting({ ids, sources, loMs, hiMs }) {
      const rs = await ch.client.query({
        query: `SELECT call_id FROM ${calls}
                WHERE source_number IN {src:Array(String)}
                  AND started_at BETWEEN {lo:DateTime64(3, 'UTC')} AND {hi:DateTime64(3, 'UTC')}
                  AND call_id IN {ids:Array(String)}`,
        query_params: { src: sources, lo: formatDateTime64(loMs), hi: formatDateTime64(hiMs), ids },
        format: 'JSONCompactEachRow',
      });
      return (await rs.json<[string]>()).map((r) => r[0]);
    },

    insertCalls: (tsv) => insertTsv('calls', CALL_COLUMNS, tsv),
    insertRejections: (tsv) => insertTsv('rejected_calls', REJECTION_COLUMNS, Buffer.from(tsv, 'utf8')),

    async scanIdsSince(fromMs, onId) {
      const rs = await ch.client.query({
        query: `SELECT toUnixTimestamp(toStartOfDay(started_at)) * 1000 AS day, count() AS n FROM ${calls}
                WHERE started_at >= {from:DateTime64(3, 'UTC')} GROUP BY day ORDER BY day`,
        query_params: { from: formatDateTime64(fromMs) },
        format: 'JSONCompactEachRow',
      });
      const days = (await rs.json<[string | number, string | number]>()).map(([d, n]) => ({ day: Number(d), n: Number(n) }));
      let total = 0;
      for (let i = 0; i < days.length;) {
        // Whole days per query, as many as fit in one chunk.
        const lo = Math.max(days[i]!.day, fromMs);
        let rows = 0;
        let j = i;
        while (j < days.length && (j === i || rows + days[j]!.n <= SCAN_CHUNK_ROWS)) rows += days[j++]!.n;
        const hi = j < days.length ? days[j]!.day : Number.MAX_SAFE_INTEGER;
        const chunk = await ch.client.query({
          query: `SELECT call_id, toUnixTimestamp64Milli(started_at) FROM ${calls}
                  WHERE started_at >= {lo:DateTime64(3, 'UTC')}${hi === Number.MAX_SAFE_INTEGER ? '' : ` AND started_at < {hi:DateTime64(3, 'UTC')}`}`,
          query_params: { lo: formatDateTime64(lo), ...(hi === Number.MAX_SAFE_INTEGER ? {} : { hi: formatDateTime64(hi) }) },
          format: 'TabSeparated',
        });
        total += eachTsvPair(await chunk.text(), onId);
        i = j;
      }
      return total;
    },
  };
}

/** Parses `call_id\tmillis` lines, undoing TSV escapes in the id. */
function eachTsvPair(text: string, onPair: (callId: string, startMs: number) => void): number {
  let n = 0;
  let pos = 0;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    const end = nl === -1 ? text.length : nl;
    const tab = text.lastIndexOf('\t', end);
    if (tab > pos) {
      const raw = text.slice(pos, tab);
      onPair(raw.includes('\\') ? unescapeTsv(raw) : raw, Number(text.slice(tab + 1, end)));
      n++;
    }
    pos = end + 1;
  }
  return n;
}

const UNESCAPES: Record<string, string> = { t: '\t', n: '\n', r: '\r', '\\': '\\', '0': '\0', b: '\b', f: '\f', "'": "'" };
const unescapeTsv = (s: string) => s.replace(/\\(.)/g, (_, c: string) => UNESCAPES[c] ?? c);
