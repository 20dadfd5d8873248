/**
 * Writes generated traffic to a bulk-load file, for trying `phonebill ingest`:
 *
 *   npx tsx scripts/lib/write-sample.ts calls.csv [--calls 100000] [--subscribers 2000] [--seed 1] [--as-of ISO]
 *
 * CSV (header call_id,source_number,target_number,start,end) or NDJSON by the
 * extension; instants in RFC 3339 with the calling subscriber's local offset.
 * The same duplicates and invalid events as the demo are included.
 */
import fs from 'node:fs';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { createTraffic, formatInstant, lastFullMonth, type TrafficEvent } from './traffic.ts';

const csvField = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

export function eventLine(e: TrafficEvent, format: 'csv' | 'ndjson'): string {
  const start = formatInstant(e.startMs, e.zone);
  const end = formatInstant(e.endMs, e.zone);
  if (format === 'ndjson') return JSON.stringify({ call_id: e.call_id, source_number: e.source_number, target_number: e.target_number, start, end });
  return [e.call_id, e.source_number, e.target_number, start, end].map(csvField).join(',');
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      calls: { type: 'string', default: '100000' },
      subscribers: { type: 'string', default: '2000' },
      seed: { type: 'string', default: '1' },
      'as-of': { type: 'string' },
    },
  });
  const file = positionals[0];
  if (!file || !/\.(csv|ndjson|jsonl)$/i.test(file)) {
    console.error('usage: npx tsx scripts/lib/write-sample.ts FILE.csv|FILE.ndjson [--calls N] [--subscribers N] [--seed N] [--as-of ISO]');
    process.exit(2);
  }
  const format = /\.csv$/i.test(file) ? 'csv' : 'ndjson';
  const asOf = values['as-of'] ? Date.parse(values['as-of']) : Date.now();
  const month = lastFullMonth(asOf);
  const tr = createTraffic({ seed: Number(values.seed), subscribers: Number(values.subscribers), calls: Number(values.calls), from: month.from, to: month.to, serviceNow: Date.now() });
  const out = fs.createWriteStream(file);
  if (format === 'csv') out.write('call_id,source_number,target_number,start,end\n');
  for (const b of tr.batches()) {
    if (!out.write(`${b.map((e) => eventLine(e, format)).join('\n')}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  const s = tr.stats;
  console.log(`${file}: ${s.events} events for ${month.label}: ${s.calls} calls, ${s.duplicates} resent duplicates, ${s.invalid} invalid`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
