/**
 * Every query the ingest service runs against ClickHouse; the only ingest
 * file that knows @clickhouse/client.
 */
import { chdbExtension, insertTabSeparated, type ClickHouse } from '../../core/clickhouse/client.ts';
import { formatDateTime64 } from '../../core/clickhouse/datetime.ts';
import { CALL_COLUMNS, REJECTION_COLUMNS } from '../domain/tsv.ts';

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
  /**
   * Every stored call with start >= fromMs as TabSeparated `call_id<TAB>epoch_millis<LF>`
   * bytes, handed over in pieces of any size (bounded queries, bounded memory).
   */
  scanIdsSince(fromMs: number, onBytes: (chunk: Uint8Array) => void): Promise<void>;
}

// A group-commit batch can hold calls from many months (bulk loads of old
// records); the default cap of 100 partitions per insert would fail the
// whole batch and every stream waiting on it.
// optimize_on_insert=0: ReplacingMergeTree would otherwise collapse equal
// sorting keys inside each inserted block, a sort-and-merge pass over every
// batch; the batcher already drops repeats within a batch, so that pass
// finds nothing (measured: about a quarter of the engine's insert CPU).
const INSERT_SETTINGS = { max_partitions_per_insert_block: 0, input_format_parallel_parsing: 0, optimize_on_insert: 0 } as const;

export function createClickHouseCallStore(ch: ClickHouse): CallStore {
  const calls = ch.table('calls');
  const chdb = chdbExtension(ch);

  const insertTsv = (table: string, columns: readonly string[], tsv: Buffer) => insertTabSeparated(ch, table, columns, tsv, INSERT_SETTINGS);

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

    async scanIdsSince(fromMs, onBytes) {
      // One pass over the window: calls are ordered by source, so any split by
      // time would read the whole partition again for every piece.
      if (chdb) {
        // queryStream takes no parameters; the bound is an integer this code computed.
        if (!Number.isSafeInteger(fromMs)) throw new TypeError(`not an instant: ${fromMs}`);
        const stream = chdb.queryStream(
          `SELECT call_id, toUnixTimestamp64Milli(started_at) FROM ${calls} WHERE started_at >= fromUnixTimestamp64Milli(toInt64(${fromMs}), 'UTC')`,
          { format: 'TabSeparated' },
        );
        for await (const chunk of stream) onBytes(chunk.raw());
        return;
      }
      const res = await ch.client.exec({
        query: `SELECT call_id, toUnixTimestamp64Milli(started_at) FROM ${calls} WHERE started_at >= {from:DateTime64(3, 'UTC')} FORMAT TabSeparated`,
        query_params: { from: formatDateTime64(fromMs) },
      });
      for await (const chunk of res.stream as AsyncIterable<Uint8Array>) onBytes(chunk);
    },
  };
}
