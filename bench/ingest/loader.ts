/**
 * Load generator, a process of its own: builds its shard of calls and
 * encodes every gRPC message up front (so the measured window spends client
 * CPU on gRPC only), says {"ready":…}, waits for "go" on stdin, streams
 * everything and says {"done":…} with the totals once every stream is
 * acknowledged (durable).
 *
 *   node --import tsx bench/ingest/loader.ts ADDR METHOD SPEC_JSON SHARD STREAMS BATCH
 *   METHOD: batches (RecordCallBatches, BATCH calls per message) | calls (RecordCalls, one per message)
 */
import readline from 'node:readline';
import type * as grpc from '@grpc/grpc-js';
import { phonebillV1 } from '../../core/grpc/proto.ts';
import { connectIngest, sendStreams } from '../../cli/lib/ingest-client.ts';
import { shardBatches, toWire, type DatasetSpec } from './dataset.ts';

interface Msg { buf: Buffer; n: number }

const [addr, method, specJson, shardS, streamsS, batchS] = process.argv.slice(2);
const spec = JSON.parse(specJson!) as DatasetSpec;
const shard = Number(shardS), streams = Number(streamsS), batch = Number(batchS);
const emit = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

const svc = (phonebillV1().Ingest as grpc.ServiceClientConstructor).service;
const t0 = performance.now();
const msgs: Msg[] = [];
let events = 0;
if (method === 'batches') {
  const ser = svc.RecordCallBatches!.requestSerialize;
  for (const b of shardBatches(spec, shard, batch)) { msgs.push({ buf: ser({ calls: b.map(toWire) }), n: b.length }); events += b.length; }
} else {
  const ser = svc.RecordCalls!.requestSerialize;
  for (const b of shardBatches(spec, shard, 1000)) for (const e of b) { msgs.push({ buf: ser(toWire(e)), n: 1 }); events++; }
}
const client = await connectIngest(addr!, { timeoutMs: 30_000 });
emit({ ready: true, events, messages: msgs.length, prepSeconds: (performance.now() - t0) / 1000 });

await new Promise<void>((resolve) => {
  const rl = readline.createInterface({ input: process.stdin });
  let go = false;
  rl.on('line', (l) => { if (l.trim() === 'go') { go = true; rl.close(); resolve(); } });
  // The benchmark went away before "go": nothing to do.
  rl.on('close', () => { if (!go) process.exit(1); });
});
const cpu0 = process.cpuUsage();
const s0 = performance.now();
const totals = await sendStreams<Msg>({
  client,
  method: method === 'batches' ? 'RecordCallBatches' : 'RecordCalls',
  source: msgs,
  count: (m) => m.n,
  serialize: (m) => m.buf,
  streams,
  eventsPerStream: 100_000,
  keepItems: false,
});
const cpu = process.cpuUsage(cpu0);
emit({ done: true, ...totals, seconds: (performance.now() - s0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6 });
client.close();
process.exit(0);
