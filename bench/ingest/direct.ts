/**
 * The baseline, a process of its own: the same rows the gRPC runs store,
 * inserted straight into a fresh embedded ClickHouse through
 * @clickhouse/client in 100k-row batches (no gRPC, no validation, no
 * dedup), once as JSONEachRow and once as TabSeparated, each into its own
 * freshly migrated database. Only the insert calls are timed (they include
 * the client's serialization: that is the cost every writer pays).
 *
 *   node --import tsx bench/ingest/direct.ts DATA_DIR SPEC_JSON SHARDS FORMAT[,FORMAT]
 *   prints {"done":true,"results":[{"format","rows","stored","insertSeconds","rowsPerSecond"}]}
 */
import { Readable } from 'node:stream';
import { createClickHouse, type ClickHouse } from '../../core/clickhouse/client.ts';
import { migrateClickHouse } from '../../core/clickhouse/migrate.ts';
import { shardBatches, toRow, type DatasetSpec } from './dataset.ts';

type Format = 'JSONEachRow' | 'TabSeparated';
type Row = Record<string, string | number>;

const [dir, specJson, shardsS, formatsS] = process.argv.slice(2);
const spec = JSON.parse(specJson!) as DatasetSpec;
const shards = Number(shardsS);
const formats = formatsS!.split(',') as Format[];
const BATCH = 100_000;
const COLUMNS = ['call_id', 'source_number', 'target_number', 'started_at', 'ended_at', 'duration_ms', 'source_country', 'target_country', 'call_class', 'ingested_at'] as const;
const tsvEscape = (v: string | number) => (typeof v === 'number' ? String(v) : v.replace(/[\\\t\n]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : '\\n')));

const base = createClickHouse({ database: 'default', chdbPath: dir! });

async function run(format: Format): Promise<Record<string, unknown>> {
  const ch: ClickHouse = { ...base, database: `direct_${format.toLowerCase()}`, table: (n) => `\`direct_${format.toLowerCase()}\`.\`${n}\`` };
  await migrateClickHouse(ch);
  const table = ch.table('calls');
  let rows = 0;
  let insertSeconds = 0;
  let pending: Row[] = [];
  const flush = async () => {
    if (!pending.length) return;
    const t = performance.now();
    if (format === 'TabSeparated') {
      const text = pending.map((r) => COLUMNS.map((c) => tsvEscape(r[c]!)).join('\t')).join('\n') + '\n';
      await ch.client.insert({ table, values: Readable.from([text], { objectMode: false }), format: 'TabSeparated', columns: [...COLUMNS] });
    } else {
      await ch.client.insert({ table, values: pending, format: 'JSONEachRow' });
    }
    insertSeconds += (performance.now() - t) / 1000;
    rows += pending.length;
    pending = [];
  };
  const now = Date.now();
  for (let s = 0; s < shards; s++) {
    for (const b of shardBatches(spec, s, 10_000)) {
      for (const e of b) pending.push(toRow(e, now));
      if (pending.length >= BATCH) await flush();
    }
  }
  await flush();
  const stored = Number((await (await ch.client.query({ query: `SELECT count() AS n FROM ${table}`, format: 'JSONEachRow' })).json<{ n: string }>())[0]!.n);
  return { format, rows, stored, insertSeconds, rowsPerSecond: rows / insertSeconds };
}

const results = [];
for (const f of formats) results.push(await run(f));
process.stdout.write(`${JSON.stringify({ done: true, results })}\n`);
await base.close();
