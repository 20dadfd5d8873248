/**
 * `npm run bench -- admission [--quick]`: CanPlaceCall through the admission
 * service (its own process, state loaded from Redis) against a bare grpc-js
 * server answering from a Map, measured by the same load-generator processes
 * in alternating rounds. See README.md here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { cpuSeconds, peakRssMiB, REPO_ROOT } from '../../scripts/lib/ingest-child.ts';
import { fmtInt } from '../../cli/lib/table.ts';
import { BLOCKED_EVERY, subscriberNumber } from './dataset.ts';
import { decisionQuantiles, parseDecisionBuckets, type Buckets } from './histogram.ts';
import { populate, startRedis, type BenchRedis } from './redis.ts';
import { median } from '../stats.ts';

interface Plan {
  quick: boolean;
  subscribers: number;
  rounds: number;
  durationMs: number;
  warmupMs: number;
  /** Load on each server before the first round (JIT tiers; the first seconds run several times slower). */
  serverWarmupMs: number;
  loaders: number;
  memorySubscribers: number;
  memoryViaStrings: boolean;
}

interface LoadResult { calls: number; seconds: number; p50Us: number; p99Us: number; p999Us: number; hist: Record<number, number>; errors: number; mismatches: number; cpuSeconds: number }

interface Phase { callsPerSecond: number; p50Us: number; p99Us: number; p999Us: number; /** Latency phases only (pooled over rounds). */ hist?: Record<number, number>; serverCpuUsPerCall: number | undefined; errors: number; mismatches: number }

/** Percentile of pooled log histograms (bucket b = [1.01^b, 1.01^(b+1)) µs), read at the bucket's middle. */
function pooledPercentileUs(hists: Record<number, number>[], q: number): number {
  const all = new Map<number, number>();
  for (const h of hists) for (const [b, n] of Object.entries(h)) all.set(Number(b), (all.get(Number(b)) ?? 0) + n);
  const buckets = [...all.keys()].sort((a, b) => a - b);
  const total = buckets.reduce((s, b) => s + all.get(b)!, 0);
  let seen = 0;
  for (const b of buckets) { seen += all.get(b)!; if (seen >= q * total) return 1.01 ** (b + 0.5); }
  return NaN;
}
type Server = 'admission' | 'bare';
type PhaseName = 'c1' | 'c16' | 'c64';
const PHASES: { name: PhaseName; inFlight: number }[] = [{ name: 'c1', inFlight: 1 }, { name: 'c16', inFlight: 16 }, { name: 'c64', inFlight: 64 }];

const log = (s: string) => process.stderr.write(`${s}\n`);

/** A child whose stdout carries JSON lines; next() resolves with the next one. */
function jsonChild(args: string[], env: Record<string, string> = {}, nodeArgs: string[] = []) {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
  const queue: Record<string, unknown>[] = [];
  const waiting: { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }[] = [];
  let failed: Error | undefined;
  readline.createInterface({ input: child.stdout! }).on('line', (l) => {
    let v: Record<string, unknown>;
    try { v = JSON.parse(l) as Record<string, unknown>; } catch { log(l); return; }
    const w = waiting.shift();
    if (w) w.resolve(v); else queue.push(v);
  });
  child.once('exit', (code, signal) => {
    failed = new Error(`${args[0]} exited (${code ?? signal})`);
    for (const w of waiting.splice(0)) w.reject(failed);
  });
  return {
    child,
    next: () => new Promise<Record<string, unknown>>((resolve, reject) => {
      const v = queue.shift();
      if (v) return resolve(v);
      if (failed) return reject(failed);
      waiting.push({ resolve, reject });
    }),
    /** The next line for which `pred` holds (log lines of a service pass by). */
    async until(pred: (v: Record<string, unknown>) => boolean) {
      for (;;) { const v = await this.next(); if (pred(v)) return v; }
    },
    send: (o: object) => child.stdin!.write(`${JSON.stringify(o)}\n`),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin!.end();
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}
type JsonChild = ReturnType<typeof jsonChild>;

async function scrapeBuckets(httpPort: number): Promise<Buckets> {
  return parseDecisionBuckets(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
}

async function waitLoaded(httpPort: number, timeoutMs: number): Promise<Record<string, unknown>> {
  const t0 = Date.now();
  for (;;) {
    const r = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
    const body = (await r.json()) as Record<string, unknown>;
    if (r.status === 200) return body;
    if (Date.now() - t0 > timeoutMs) throw new Error(`admission did not load its state within ${timeoutMs} ms: ${JSON.stringify(body)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** One call in flight alternating between the two servers; one result per server, in addrs order. */
async function latencyPhase(loader: JsonChild, addrs: [string, string], plan: Plan): Promise<Phase[]> {
  loader.send({ interleave: addrs, warmupMs: plan.warmupMs, durationMs: plan.durationMs * 2, check: [true, false] });
  const r = (await loader.next()) as unknown as { results?: LoadResult[]; error?: string };
  if (!r.results) throw new Error(`load generator: ${r.error}`);
  return r.results.map((x) => ({
    callsPerSecond: x.calls / x.seconds, p50Us: x.p50Us, p99Us: x.p99Us, p999Us: x.p999Us, hist: x.hist,
    serverCpuUsPerCall: undefined, errors: x.errors, mismatches: x.mismatches,
  }));
}

async function phase(loaders: JsonChild[], addr: string, pid: number, inFlight: number, plan: Plan, check: boolean): Promise<Phase> {
  // Throughput: spread over every loader (one Node client saturates first). Latency at 1 in flight is latencyPhase's.
  const per = Math.max(1, Math.round(inFlight / loaders.length));
  const cpu0 = await cpuSeconds(pid);
  for (const l of loaders) l.send({ addr, inFlight: per, warmupMs: plan.warmupMs, durationMs: plan.durationMs, check });
  const rs = (await Promise.all(loaders.map((l) => l.next()))) as unknown as (LoadResult & { error?: string })[];
  const cpu1 = await cpuSeconds(pid);
  for (const r of rs) if (r.error) throw new Error(`load generator: ${r.error}`);
  const calls = rs.reduce((s, r) => s + r.calls, 0);
  return {
    callsPerSecond: rs.reduce((s, r) => s + r.calls / r.seconds, 0),
    // With several loaders: the worst loader's percentile (they share the server).
    p50Us: Math.max(...rs.map((r) => r.p50Us)),
    p99Us: Math.max(...rs.map((r) => r.p99Us)),
    p999Us: Math.max(...rs.map((r) => r.p999Us)),
    // The window includes warm-up calls: an estimate, comparable between the two servers.
    serverCpuUsPerCall: cpu0 !== undefined && cpu1 !== undefined ? ((cpu1 - cpu0) * 1e6) / (calls * (1 + plan.warmupMs / plan.durationMs)) : undefined,
    errors: rs.reduce((s, r) => s + r.errors, 0),
    mismatches: rs.reduce((s, r) => s + r.mismatches, 0),
  };
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      subscribers: { type: 'string' },
      rounds: { type: 'string' },
      seconds: { type: 'string' },
      loaders: { type: 'string', default: '2' },
      'memory-subscribers': { type: 'string', default: '10000000' },
    },
  });
  const quick = values.quick!;
  const plan: Plan = {
    quick,
    subscribers: Number(values.subscribers ?? (quick ? 200_000 : 1_000_000)),
    // Nine rounds: single rounds drift by ±10-20% on this shared 2-core machine; medians of nine settle.
    rounds: Number(values.rounds ?? (quick ? 3 : 9)),
    durationMs: Number(values.seconds ?? (quick ? 1 : 4)) * 1000,
    warmupMs: quick ? 250 : 1000,
    serverWarmupMs: quick ? 2500 : 6000,
    loaders: Number(values.loaders),
    memorySubscribers: Number(values['memory-subscribers']),
    memoryViaStrings: !quick,
  };
  const t0 = Date.now();
  const children: JsonChild[] = [];
  let redis: BenchRedis | undefined;
  try {
    redis = await startRedis();
    const prefix = `bench-admission-${process.pid}:`;
    log(`state: ${fmtInt(plan.subscribers)} subscribers (every ${BLOCKED_EVERY}th blocked) into Redis at ${redis.url} (${redis.private ? 'private redis-server' : 'REDIS_URL'}), prefix ${prefix} ...`);
    await populate(redis, prefix, plan.subscribers, subscriberNumber, BLOCKED_EVERY);

    const adm = jsonChild(['admission/main.ts'], {
      REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, ADMISSION_PORT: '0', ADMISSION_HTTP_PORT: '0', PHONEBILL_HOST: '127.0.0.1', LOG_LEVEL: 'warn',
    });
    children.push(adm);
    const ports = await adm.until((v) => v.msg === 'admission listening');
    const admHttp = ports.httpPort as number;
    const loaded = await waitLoaded(admHttp, 120_000);
    log(`admission: pid ${adm.child.pid}, loaded ${fmtInt(loaded.subscribers as number)} subscribers in ${Math.round(loaded.lastLoadMs as number)} ms (${loaded.bytes} bytes of number sets)`);
    const bare = jsonChild(['bench/admission/bare.ts', String(plan.subscribers)]);
    children.push(bare);
    const barePort = (await bare.next()).port as number;
    const loaders = Array.from({ length: plan.loaders }, (_, i) => jsonChild(['bench/admission/load.ts', String(plan.subscribers), String(i)]));
    children.push(...loaders);
    await Promise.all(loaders.map((l) => l.next()));

    const servers: Record<Server, { addr: string; pid: number; check: boolean }> = {
      admission: { addr: `127.0.0.1:${ports.grpcPort}`, pid: adm.child.pid!, check: true },
      bare: { addr: `127.0.0.1:${barePort}`, pid: bare.child.pid!, check: false },
    };
    log('warming up both servers ...');
    for (const s of Object.values(servers)) await phase(loaders, s.addr, s.pid, 64, { ...plan, durationMs: plan.serverWarmupMs }, false);

    const h0 = await scrapeBuckets(admHttp);
    // The decision time of each admission phase too: where a tail comes from (idle waits at 1 in flight, or load).
    const byPhase: Record<PhaseName, ReturnType<typeof decisionQuantiles>[]> = { c1: [], c16: [], c64: [] };
    const results: Record<Server, Record<PhaseName, Phase[]>> = { admission: { c1: [], c16: [], c64: [] }, bare: { c1: [], c16: [], c64: [] } };
    for (let round = 0; round < plan.rounds; round++) {
      // Alternate which server goes first, so drift on the shared machine hits both alike.
      const order: Server[] = round % 2 === 0 ? ['bare', 'admission'] : ['admission', 'bare'];
      // Latency at 1 in flight: one loader alternates single calls between the two servers.
      {
        const b0 = await scrapeBuckets(admHttp);
        const lat = await latencyPhase(loaders[0]!, [servers.admission.addr, servers.bare.addr], plan);
        byPhase.c1.push(decisionQuantiles(b0, await scrapeBuckets(admHttp)));
        const names: Server[] = ['admission', 'bare'];
        lat.forEach((r, i) => {
          if (r.mismatches > 0 || r.errors > 0) throw new Error(`${names[i]} c1: ${r.mismatches} wrong answers, ${r.errors} errors`);
          results[names[i]!].c1.push(r);
        });
        log(`round ${round + 1}/${plan.rounds} 1 in flight, interleaved: admission p50 ${lat[0]!.p50Us.toFixed(0)} µs p99 ${lat[0]!.p99Us.toFixed(0)} µs | bare p50 ${lat[1]!.p50Us.toFixed(0)} µs p99 ${lat[1]!.p99Us.toFixed(0)} µs`);
      }
      for (const name of order) {
        const s = servers[name];
        const line: string[] = [];
        for (const p of PHASES) {
          if (p.inFlight === 1) continue; // measured interleaved above
          const b0 = name === 'admission' ? await scrapeBuckets(admHttp) : undefined;
          const r = await phase(loaders, s.addr, s.pid, p.inFlight, plan, s.check);
          if (b0) byPhase[p.name].push(decisionQuantiles(b0, await scrapeBuckets(admHttp)));
          if (r.mismatches > 0 || r.errors > 0) throw new Error(`${name} ${p.name}: ${r.mismatches} wrong answers, ${r.errors} errors`);
          results[name][p.name].push(r);
          line.push(`${p.inFlight} in flight ${fmtInt(r.callsPerSecond)}/s`);
        }
        log(`round ${round + 1}/${plan.rounds} ${name.padEnd(9)} ${line.join(' | ')}`);
      }
    }
    const h1 = await scrapeBuckets(admHttp);
    const decision = decisionQuantiles(h0, h1);
    const admRss = await peakRssMiB(servers.admission.pid);

    for (const c of children.splice(0)) await c.stop();
    log(`memory: a replica of ${fmtInt(plan.memorySubscribers)} subscribers in a fresh process (${plan.memoryViaStrings ? 'E.164 strings, as from Redis' : 'numeric keys'}) ...`);
    const mem = jsonChild(['bench/admission/memory.ts', String(plan.memorySubscribers), plan.memoryViaStrings ? 'strings' : 'keys'], {}, ['--expose-gc']);
    children.push(mem);
    const memory = await mem.next() as { bytesPerSubscriber: number; arrayBytesPerSubscriber: number; buildMs: number; lookupNs: number; subscribers: number };

    const med = (s: Server, p: PhaseName, k: keyof Phase) => median(results[s][p].map((r) => r[k] as number));
    // Latency at 1 in flight: every round's calls pooled into one distribution per server (tens of
    // thousands of calls, so p99 rests on hundreds of samples rather than one round's few dozen).
    const pooled = (sv: Server, q: number) => pooledPercentileUs(results[sv].c1.map((r) => r.hist!), q);
    const a = { c1p50: pooled('admission', 0.5), c1p99: pooled('admission', 0.99), c1p999: pooled('admission', 0.999), c16: med('admission', 'c16', 'callsPerSecond'), c64: med('admission', 'c64', 'callsPerSecond'), cpu: med('admission', 'c64', 'serverCpuUsPerCall') };
    const b = { c1p50: pooled('bare', 0.5), c1p99: pooled('bare', 0.99), c1p999: pooled('bare', 0.999), c16: med('bare', 'c16', 'callsPerSecond'), c64: med('bare', 'c64', 'callsPerSecond'), cpu: med('bare', 'c64', 'serverCpuUsPerCall') };
    const ratio = a.c64 / b.c64;
    // Round by round (the two servers measured back to back): less exposed to drift over the run.
    const paired = (p: PhaseName, k: keyof Phase) => median(results.admission[p].map((r, i) => (r[k] as number) / (results.bare[p][i]![k] as number)));
    const pairedC64 = paired('c64', 'callsPerSecond');
    const pairedP99 = paired('c1', 'p99Us');
    const verdict = (ok: boolean) => (ok ? 'ok' : 'MISSED');
    console.log([
      '',
      `admission benchmark (${quick ? 'quick' : 'full'}, ${os.cpus().length} cores, load average ${os.loadavg()[0]!.toFixed(1)} at the end; ${((Date.now() - t0) / 1000).toFixed(0)} s; ${plan.rounds} alternating rounds of ${plan.durationMs / 1000} s per phase (latency: all rounds pooled; throughput: medians of rounds); ${plan.loaders} load-generator processes)`,
      `                          admission     bare grpc-js   ratio`,
      `  1 in flight  p50       ${a.c1p50.toFixed(0).padStart(7)} µs   ${b.c1p50.toFixed(0).padStart(7)} µs    ${(a.c1p50 / b.c1p50).toFixed(2)}`,
      `               p99       ${a.c1p99.toFixed(0).padStart(7)} µs   ${b.c1p99.toFixed(0).padStart(7)} µs    ${(a.c1p99 / b.c1p99).toFixed(2)}   target ≤ 1.10: ${verdict(a.c1p99 / b.c1p99 <= 1.1)}`,
      `               p99.9     ${a.c1p999.toFixed(0).padStart(7)} µs   ${b.c1p999.toFixed(0).padStart(7)} µs    ${(a.c1p999 / b.c1p999).toFixed(2)}`,
      `  16 in flight           ${fmtInt(a.c16).padStart(8)}/s   ${fmtInt(b.c16).padStart(8)}/s    ${(a.c16 / b.c16).toFixed(2)}`,
      `  64 in flight           ${fmtInt(a.c64).padStart(8)}/s   ${fmtInt(b.c64).padStart(8)}/s    ${ratio.toFixed(2)}   target ≥ 0.95: ${verdict(ratio >= 0.95)}`,
      `  round-by-round ratios  64 in flight ${pairedC64.toFixed(2)}, p99 at 1 in flight ${pairedP99.toFixed(2)} (medians of the per-round ratios)`,
      `  server CPU per call    ${a.cpu?.toFixed(1).padStart(7)} µs   ${b.cpu?.toFixed(1).padStart(7)} µs    ${(a.cpu / b.cpu).toFixed(2)}   (at 64 in flight)`,
      `  decision time (server) p50 ${decision.p50Us.toFixed(2)} µs, p99 ${decision.p99Us.toFixed(2)} µs over ${fmtInt(decision.count)} calls   target p99 < 10 µs: ${verdict(decision.p99Us < 10)}`,
      `                         by phase (medians of rounds): ${PHASES.map((p) => `${p.inFlight} in flight p50 ${median(byPhase[p.name].map((q) => q.p50Us)).toFixed(2)} p99 ${median(byPhase[p.name].map((q) => q.p99Us)).toFixed(2)} µs`).join(', ')}`,
      `  replica memory         ${memory.bytesPerSubscriber.toFixed(2)} bytes/subscriber with ${fmtInt(memory.subscribers)} subscribers (≤ 40: ${verdict(memory.bytesPerSubscriber <= 40)}); built in ${(memory.buildMs / 1000).toFixed(1)} s; lookup ${memory.lookupNs.toFixed(0)} ns`,
      `  admission peak RSS     ${admRss} MiB with ${fmtInt(plan.subscribers)} subscribers`,
    ].join('\n'));
    const r2 = (x: number) => Math.round(x * 100) / 100;
    console.log(JSON.stringify({
      bench: 'admission',
      unit: 'calls/s',
      value: Math.round(a.c64),
      baseline: Math.round(b.c64),
      ratio: Number(ratio.toFixed(3)),
      p99Us: Math.round(a.c1p99),
      bareP99Us: Math.round(b.c1p99),
      decisionP99Us: r2(decision.p99Us),
      bytesPerSubscriber: r2(memory.bytesPerSubscriber),
      p50Us: Math.round(a.c1p50),
      bareP50Us: Math.round(b.c1p50),
      p999Us: Math.round(a.c1p999),
      bareP999Us: Math.round(b.c1p999),
      at16: Math.round(a.c16),
      bareAt16: Math.round(b.c16),
      decisionP50Us: r2(decision.p50Us),
      pairedRatio: Number(pairedC64.toFixed(3)),
      pairedP99Ratio: Number(pairedP99.toFixed(3)),
      serverCpuUsPerCall: a.cpu === undefined ? null : r2(a.cpu),
      bareServerCpuUsPerCall: b.cpu === undefined ? null : r2(b.cpu),
      subscribers: plan.subscribers,
      memorySubscribers: memory.subscribers,
      rounds: plan.rounds,
      loaders: plan.loaders,
      quick,
    }));
  } finally {
    for (const c of children) await c.stop();
    await redis?.close();
  }
}
