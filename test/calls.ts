/**
 * Test plumbing for billing: store calls straight into a ClickHouse
 * database, classified exactly as the ingest service does (core/numbers),
 * with an explicit ingestion instant so late arrivals can be staged.
 */
import { Readable } from 'node:stream';
import { classifyCall } from '../core/numbers/index.ts';
import type { ClickHouse } from '../core/clickhouse/client.ts';

export interface TestCall { callId: string; source: string; target: string; startMs: number; endMs: number; ingestedAtMs: number }

const dt = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');

export async function storeCalls(ch: ClickHouse, calls: readonly TestCall[]): Promise<void> {
  if (!calls.length) return;
  let text = '';
  for (const c of calls) {
    const k = classifyCall(c.source, c.target);
    if (!k.ok) throw new Error(`test call ${c.callId}: ${k.field} ${k.reason}`);
    text += [c.callId, c.source, c.target, dt(c.startMs), dt(c.endMs), c.endMs - c.startMs, k.sourceCountry, k.targetCountry, k.callClass, dt(c.ingestedAtMs)].join('\t') + '\n';
  }
  await ch.client.insert({
    table: ch.table('calls'),
    columns: ['call_id', 'source_number', 'target_number', 'started_at', 'ended_at', 'duration_ms', 'source_country', 'target_country', 'call_class', 'ingested_at'],
    values: Readable.from([text], { objectMode: false }),
    format: 'TabSeparated',
  });
}
