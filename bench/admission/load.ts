/**
 * Load generator, a process of its own, driven by JSON lines on stdin:
 *
 *   {"addr":"127.0.0.1:N","inFlight":K,"warmupMs":W,"durationMs":D,"check":true}
 *   {"interleave":["127.0.0.1:N","127.0.0.1:M"],"warmupMs":W,"durationMs":D,"check":[true,false]}
 *
 * keeps K CanPlaceCall calls in flight against addr (one channel), warms up
 * for W ms, then counts the calls completed during D ms and records each
 * one's latency; answers one JSON line {calls, seconds, p50Us, p99Us,
 * p999Us, errors, mismatches, cpuSeconds} (interleaved: {results: [one per
 * server]}, one call in flight alternating between them). With check, every answer is
 * compared with the rules' expected answer. Requests are serialized up
 * front so the client spends its CPU on gRPC only.
 *
 *   node --import tsx bench/admission/load.ts SUBSCRIBERS LOADER_INDEX
 * Says {"ready":true} first; exits when stdin closes.
 */
import readline from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { phonebillV1 } from '../../core/grpc/proto.ts';
import { requestMix } from './dataset.ts';

interface Command { addr: string; inFlight: number; warmupMs: number; durationMs: number; check: boolean }
/**
 * Latency at one call in flight, interleaved: one call to each server in
 * turn, so both are measured at the same moments of the shared machine's
 * load (measured one after the other, drift between the two windows was
 * larger than the difference between the servers).
 */
interface InterleavedCommand { interleave: [string, string]; warmupMs: number; durationMs: number; check: [boolean, boolean] }
interface Answer { allowed: boolean; reason: string }

const subscribers = Number(process.argv[2]);
const loaderIndex = Number(process.argv[3] ?? 0);
const emit = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

const Admission = phonebillV1().Admission;
const method = Admission.service.CanPlaceCall!;
const PATH = method.path;
const mix = requestMix(subscribers);
const wire = mix.map((r) => method.requestSerialize({ source_number: r.source_number, target_number: r.target_number }));
const deserialize = method.responseDeserialize as (b: Buffer) => Answer;
const clients = new Map<string, grpc.Client>();

function clientFor(addr: string): grpc.Client {
  let c = clients.get(addr);
  if (!c) clients.set(addr, (c = new grpc.Client(addr, grpc.credentials.createInsecure())));
  return c;
}

function logHistogram(sortedMs: Float64Array): Record<number, number> {
  const h: Record<number, number> = {};
  for (const ms of sortedMs) {
    const b = Math.floor(Math.log(Math.max(ms * 1000, 1)) / Math.log(1.01));
    h[b] = (h[b] ?? 0) + 1;
  }
  return h;
}

const percentile = (sorted: Float64Array, q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]! : NaN);

/** One server's calls as seen by this loader: latencies (while measuring), errors and wrong answers. */
class Target {
  readonly client: grpc.Client;
  readonly lat: Float64Array;
  n = 0;
  calls = 0;
  errors = 0;
  mismatches = 0;
  measuring = false;

  constructor(addr: string, readonly check: boolean, capacity: number) {
    this.client = clientFor(addr);
    this.lat = new Float64Array(Math.max(1024, capacity));
  }

  ready(): Promise<void> {
    return new Promise<void>((res, rej) => this.client.waitForReady(Date.now() + 10_000, (e) => (e ? rej(e) : res())));
  }

  /** Request k of the mix; resolves when it is answered. */
  one(k: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t0 = performance.now();
      this.client.makeUnaryRequest<Buffer, Answer>(PATH, (b) => b, deserialize, wire[k]!, (err, res) => {
        const dt = performance.now() - t0;
        if (this.measuring) {
          this.calls++;
          if (this.n < this.lat.length) this.lat[this.n++] = dt;
          if (err) this.errors++;
          else if (this.check) {
            const e = mix[k]!.expected;
            if (res!.allowed !== e.allowed || res!.reason !== e.reason) this.mismatches++;
          }
        }
        resolve();
      });
    });
  }

  summary(seconds: number, cpuSeconds: number) {
    const sorted = this.lat.subarray(0, this.n).sort();
    return {
      calls: this.calls,
      seconds,
      p50Us: percentile(sorted, 0.5) * 1000,
      p99Us: percentile(sorted, 0.99) * 1000,
      p999Us: percentile(sorted, 0.999) * 1000,
      // Latencies as a log histogram (1% wide buckets: bucket b holds [1.01^b, 1.01^(b+1)) µs),
      // so the benchmark can pool every round's calls into one distribution.
      hist: logHistogram(sorted),
      errors: this.errors,
      mismatches: this.mismatches,
      cpuSeconds,
    };
  }
}

/** Runs `load` through warm-up, then measures for durationMs; the measured seconds and this process's CPU seconds. */
async function measure(targets: Target[], warmupMs: number, durationMs: number, load: () => Promise<void>, stopLoad: () => void) {
  const running = load();
  await new Promise((r) => setTimeout(r, warmupMs));
  const cpu0 = process.cpuUsage();
  for (const t of targets) t.measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, durationMs));
  for (const t of targets) t.measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  stopLoad();
  await running;
  return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

async function run(cmd: Command) {
  const target = new Target(cmd.addr, cmd.check, Math.ceil((cmd.durationMs / 1000) * 60_000));
  await target.ready();
  let stop = false;
  const worker = async (w: number) => {
    let k = (w * 997 + loaderIndex * 4099) % wire.length;
    while (!stop) {
      await target.one(k);
      k = k + 1 === wire.length ? 0 : k + 1;
    }
  };
  const m = await measure([target], cmd.warmupMs, cmd.durationMs,
    async () => { await Promise.all(Array.from({ length: cmd.inFlight }, (_, w) => worker(w))); }, () => { stop = true; });
  return target.summary(m.seconds, m.cpuSeconds);
}

async function runInterleaved(cmd: InterleavedCommand) {
  const targets = cmd.interleave.map((addr, i) => new Target(addr, cmd.check[i]!, Math.ceil((cmd.durationMs / 1000) * 30_000)));
  for (const t of targets) await t.ready();
  let stop = false;
  const m = await measure(targets, cmd.warmupMs, cmd.durationMs, async () => {
    let k = (loaderIndex * 4099) % wire.length;
    while (!stop) {
      // The same request to both, the first server alternating, so neither always follows the other.
      const [a, b] = k % 2 === 0 ? [targets[0]!, targets[1]!] : [targets[1]!, targets[0]!];
      await a.one(k);
      await b.one(k);
      k = k + 1 === wire.length ? 0 : k + 1;
    }
  }, () => { stop = true; });
  // The loader's CPU is shared by both servers' calls: not attributed (cpuSeconds 0).
  return { results: targets.map((t) => t.summary(m.seconds, 0)) };
}

emit({ ready: true, requests: mix.length });
const rl = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
rl.on('line', (line) => {
  queue = queue.then(async () => {
    const cmd = JSON.parse(line) as Command | InterleavedCommand;
    emit('interleave' in cmd ? await runInterleaved(cmd) : await run(cmd));
  }).catch((e: unknown) => { emit({ error: String(e) }); });
});
rl.on('close', () => {
  void queue.then(() => {
    for (const c of clients.values()) c.close();
    process.exit(0);
  });
});
