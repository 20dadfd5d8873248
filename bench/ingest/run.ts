/**
 * `npm run bench -- ingest [--quick] [--profile]`: calls per second into the
 * embedded ClickHouse through the ingest service, acknowledged (durable),
 * against the same rows inserted directly. See README.md here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { cpuSeconds, peakRssMiB, REPO_ROOT, startIngestChild } from '../../scripts/lib/ingest-child.ts';
import { sqlViaService } from '../../cli/lib/sql-client.ts';
import { fmtInt } from '../../cli/lib/table.ts';
import { DEFAULT_SUBSCRIBERS, type DatasetSpec } from './dataset.ts';
import { summarizeProfile } from './profile.ts';

interface Plan {
  quick: boolean;
  batchedCalls: number;
  unaryCalls: number;
  batchLoaders: number;
  unaryLoaders: number;
  streams: number;
  batch: number;
  baselineFormats: ('JSONEachRow' | 'TabSeparated')[];
  profile: boolean;
  asOf: number;
}

interface LoaderResult { sent: number; acknowledged: number; accepted: number; duplicates: number; rejected: number; streams: number; seconds: number; cpuSeconds: number }

interface PhaseResult {
  method: 'batches' | 'calls';
  events: number;
  accepted: number;
  seconds: number;
  callsPerSecond: number;
  peakRssMiB: number | undefined;
  serviceCpuSeconds: number | undefined;
  loaderCpuSeconds: number;
  stored: number;
  profile?: string;
}

const log = (s: string) => process.stderr.write(`${s}\n`);
const node = (script: string, args: string[]) => spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });

/** JSON lines a child prints on stdout, one promise per expected line. */
function jsonLines(child: ChildProcess): () => Promise<Record<string, unknown>> {
  const queue: Record<string, unknown>[] = [];
  const waiting: ((v: Record<string, unknown>) => void)[] = [];
  let failed: Error | undefined;
  const fails: ((e: Error) => void)[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (l) => {
    let v: Record<string, unknown>;
    try { v = JSON.parse(l) as Record<string, unknown>; } catch { log(l); return; }
    const w = waiting.shift();
    if (w) { fails.shift(); w(v); } else queue.push(v);
  });
  child.once('exit', (code) => {
    if (code === 0) return;
    failed = new Error(`${child.spawnargs.slice(3, 4).join(' ')} exited with ${code}`);
    for (const f of fails.splice(0)) f(failed);
    waiting.length = 0;
  });
  return () => new Promise((resolve, reject) => {
    const v = queue.shift();
    if (v) return resolve(v);
    if (failed) return reject(failed);
    waiting.push(resolve);
    fails.push(reject);
  });
}

function spec(plan: Plan, calls: number, shards: number, prefix: string): DatasetSpec {
  return { seed: 42, subscribers: DEFAULT_SUBSCRIBERS, callsPerShard: Math.ceil(calls / shards), prefix, asOf: plan.asOf };
}

interface Direct { format: string; rowsPerSecond: number; rows: number; stored: number; insertSeconds: number }

/** Both formats; the faster is the baseline, so the ratio is against the best direct path. */
async function baseline(plan: Plan, tmp: string): Promise<{ best: Direct; all: Direct[] }> {
  log(`baseline: the same rows straight into a fresh embedded ClickHouse (@clickhouse/client, ${plan.baselineFormats.join(' and ')}, 100k-row batches) ...`);
  const child = node('bench/ingest/direct.ts', [path.join(tmp, 'direct'), JSON.stringify(spec(plan, plan.batchedCalls, plan.batchLoaders, 'b')), String(plan.batchLoaders), plan.baselineFormats.join(',')]);
  const all = (await jsonLines(child)()).results as Direct[];
  for (const r of all) {
    if (r.rows !== r.stored) throw new Error(`baseline ${r.format} stored ${r.stored} of ${r.rows} rows`);
    log(`  ${r.format}: ${fmtInt(r.rowsPerSecond)} rows/s (${fmtInt(r.rows)} rows in ${r.insertSeconds.toFixed(2)} s of inserts)`);
  }
  return { best: all.reduce((a, b) => (b.rowsPerSecond > a.rowsPerSecond ? b : a)), all };
}

async function phase(plan: Plan, tmp: string, method: 'batches' | 'calls'): Promise<PhaseResult> {
  const loaders = method === 'batches' ? plan.batchLoaders : plan.unaryLoaders;
  const calls = method === 'batches' ? plan.batchedCalls : plan.unaryCalls;
  const label = method === 'batches' ? `RecordCallBatches (${fmtInt(plan.batch)} calls per message)` : 'RecordCalls (one call per message)';
  const dataDir = path.join(tmp, `svc-${method}`);
  const profDir = path.join(tmp, `prof-${method}`);
  const svc = await startIngestChild({
    dataDir,
    env: { CLICKHOUSE_URL: '' },
    nodeArgs: plan.profile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [],
  });
  const children: ChildProcess[] = [];
  try {
    const ds = spec(plan, calls, loaders, method === 'batches' ? 'b' : 'u');
    log(`${label}: service pid ${svc.pid}; ${loaders} load generator process(es), ${plan.streams} streams each, encoding ${fmtInt(ds.callsPerShard * loaders)} calls ...`);
    const next: (() => Promise<Record<string, unknown>>)[] = [];
    for (let i = 0; i < loaders; i++) {
      const c = node('bench/ingest/loader.ts', [svc.addr, method, JSON.stringify(ds), String(i), String(plan.streams), String(plan.batch)]);
      children.push(c);
      next.push(jsonLines(c));
    }
    await Promise.all(next.map((n) => n()));
    const cpu0 = await cpuSeconds(svc.pid);
    const t0 = performance.now();
    for (const c of children) c.stdin!.write('go\n');
    const done = (await Promise.all(next.map((n) => n()))) as unknown as LoaderResult[];
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = await cpuSeconds(svc.pid);
    const rss = await peakRssMiB(svc.pid);
    const metrics = await (await fetch(`http://127.0.0.1:${svc.httpPort}/metrics`)).text();
    const metric = (name: string) => Number(metrics.match(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm'))?.[1] ?? NaN);
    const flushes = metric('phonebill_ingest_flush_seconds_count');
    log(`  service: ${fmtInt(flushes)} flushes, ${(metric('phonebill_ingest_flush_seconds_sum')).toFixed(2)} s flushing, ${fmtInt(metric('phonebill_ingest_batch_rows_sum') / flushes)} rows per flush, ${fmtInt(metric('phonebill_ingest_dedup_lookups_total'))} ids looked up in ClickHouse`);
    const acknowledged = done.reduce((s, d) => s + d.acknowledged, 0);
    const accepted = done.reduce((s, d) => s + d.accepted, 0);
    const res = await sqlViaService(`http://127.0.0.1:${svc.httpPort}/sql`, 'SELECT count() FROM phonebill.calls');
    const stored = Number(res?.data[0]?.[0]);
    if (accepted !== ds.callsPerShard * loaders || stored !== accepted) {
      throw new Error(`${label}: ${accepted} accepted and ${stored} stored, expected ${ds.callsPerShard * loaders}`);
    }
    const r: PhaseResult = {
      method,
      events: acknowledged,
      accepted,
      seconds,
      callsPerSecond: acknowledged / seconds,
      peakRssMiB: rss,
      serviceCpuSeconds: cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined,
      loaderCpuSeconds: done.reduce((s, d) => s + d.cpuSeconds, 0),
      stored,
    };
    await svc.stop();
    if (plan.profile) {
      // Kept after the run (the temp folder is removed): .data/bench/ingest-<method>.cpuprofile.
      const f = fs.readdirSync(profDir).find((x) => x.endsWith('.cpuprofile'));
      if (f) {
        const keep = path.join(REPO_ROOT, '.data', 'bench', `ingest-${method}.cpuprofile`);
        fs.mkdirSync(path.dirname(keep), { recursive: true });
        fs.copyFileSync(path.join(profDir, f), keep);
        r.profile = keep;
      }
    }
    log(`  ${fmtInt(r.callsPerSecond)} calls/s (${fmtInt(acknowledged)} in ${seconds.toFixed(2)} s), service CPU ${r.serviceCpuSeconds?.toFixed(1)} s, load generators CPU ${r.loaderCpuSeconds.toFixed(1)} s, service peak RSS ${rss} MiB`);
    return r;
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await svc.stop();
  }
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      calls: { type: 'string' },
      'unary-calls': { type: 'string' },
      'batch-loaders': { type: 'string', default: '1' },
      'unary-loaders': { type: 'string', default: '2' },
      // Four streams per loader: a stream ends every 100,000 calls and waits for its
      // acknowledgement (up to a flush interval plus a flush); with two, the
      // loader idled in those waits (measured: ~180k vs ~200k calls/s).
      streams: { type: 'string', default: '4' },
      batch: { type: 'string', default: '1000' },
      'baseline-format': { type: 'string', default: 'JSONEachRow,TabSeparated' },
    },
  });
  const quick = values.quick!;
  const plan: Plan = {
    quick,
    batchedCalls: Number(values.calls ?? (quick ? 200_000 : 4_000_000)),
    unaryCalls: Number(values['unary-calls'] ?? (quick ? 60_000 : 1_000_000)),
    batchLoaders: Number(values['batch-loaders']),
    unaryLoaders: Number(values['unary-loaders']),
    streams: Number(values.streams),
    batch: Number(values.batch),
    baselineFormats: values['baseline-format']!.split(',').map((f) => {
      if (f !== 'JSONEachRow' && f !== 'TabSeparated') throw new Error(`--baseline-format: JSONEachRow and/or TabSeparated, got ${f}`);
      return f;
    }),
    profile: values.profile!,
    asOf: Date.parse('2026-11-15T00:00:00Z'),
  };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'phonebill-bench-ingest-'));
  const t0 = Date.now();
  try {
    const { best: base, all: direct } = await baseline(plan, tmp);
    const batched = await phase(plan, tmp, 'batches');
    const unary = await phase(plan, tmp, 'calls');
    const ratio = batched.callsPerSecond / base.rowsPerSecond;
    const peak = Math.max(batched.peakRssMiB ?? 0, unary.peakRssMiB ?? 0);
    const perM = (p: PhaseResult) => (p.serviceCpuSeconds !== undefined ? (p.serviceCpuSeconds / p.events) * 1e6 : undefined);
    console.log([
      '',
      `ingest benchmark (${quick ? 'quick' : 'full'}, ${os.cpus().length} cores, load average ${os.loadavg()[0]!.toFixed(1)} at the end; ${((Date.now() - t0) / 1000).toFixed(0)} s)`,
      `  RecordCallBatches  ${fmtInt(batched.callsPerSecond).padStart(9)} calls/s  ${fmtInt(batched.events)} calls, ${plan.batchLoaders} load generator(s)  service CPU ${perM(batched)?.toFixed(2)} s per 1M calls`,
      `  RecordCalls        ${fmtInt(unary.callsPerSecond).padStart(9)} calls/s  ${fmtInt(unary.events)} calls, ${plan.unaryLoaders} load generator(s)  service CPU ${perM(unary)?.toFixed(2)} s per 1M calls`,
      ...direct.map((d) => `  direct insert      ${fmtInt(d.rowsPerSecond).padStart(9)} rows/s   ${fmtInt(d.rows)} rows, ${d.format}, 100k-row batches, no gRPC${d === base ? ' (the baseline: the faster)' : ''}`),
      `  batched / direct   ${ratio.toFixed(2)}`,
      `  service peak RSS   ${peak} MiB (VmHWM)`,
      ...(plan.profile ? ['', ...[batched, unary].flatMap((p) => (p.profile ? [`CPU profile of the service (${p.method}): ${p.profile}`, ...summarizeProfile(p.profile, 20)] : []))] : []),
    ].join('\n'));
    console.log(JSON.stringify({
      bench: 'ingest',
      unit: 'calls/s',
      value: Math.round(batched.callsPerSecond),
      baseline: Math.round(base.rowsPerSecond),
      ratio: Number(ratio.toFixed(3)),
      recordCalls: Math.round(unary.callsPerSecond),
      peakRssMiB: peak,
      calls: batched.events,
      recordCallsCalls: unary.events,
      batch: plan.batch,
      loaders: { batches: plan.batchLoaders, calls: plan.unaryLoaders },
      streamsPerLoader: plan.streams,
      baselineFormat: base.format,
      ...Object.fromEntries(direct.map((d) => [`baseline${d.format}`, Math.round(d.rowsPerSecond)])),
      quick,
    }));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
