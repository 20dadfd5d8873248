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

async function run(cmd: Command) {
  const client = clientFor(cmd.addr);
  await new Promise<void>((res, rej) => client.waitForReady(Date.now() + 10_000, (e) => (e ? rej(e) : res())));
  const lat = new Float64Array(Math.max(1024, Math.ceil((cmd.durationMs / 1000) * 60_000)));
  let n = 0;
  let calls = 0;
  let errors = 0;
  let mismatches = 0;
  let measuring = false;
  let stop = false;

  const one = (k: number) => new Promise<void>((resolve) => {
    const t0 = performance.now();
    client.makeUnaryRequest<Buffer, Answer>(PATH, (b) => b, deserialize, wire[k]!, (err, res) => {
      const dt = performance.now() - t0;
      if (measuring) {
        calls++;
        if (n < lat.length) lat[n++] = dt;
        if (err) errors++;
        else if (cmd.check) {
          const e = mix[k]!.expected;
          if (res!.allowed !== e.allowed || res!.reason !== e.reason) mismatches++;
        }
      }
      resolve();
    });
  });

  const worker = async (w: number) => {
    let k = (w * 997 + loaderIndex * 4099) % wire.length;
    while (!stop) {
      await one(k);
      k = k + 1 === wire.length ? 0 : k + 1;
    }
  };
  const workers = Array.from({ length: cmd.inFlight }, (_, w) => worker(w));
  await new Promise((r) => setTimeout(r, cmd.warmupMs));
  const cpu0 = process.cpuUsage();
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, cmd.durationMs));
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  stop = true;
  await Promise.all(workers);
  const sorted = lat.subarray(0, n).sort();
  return {
    calls,
    seconds,
    p50Us: percentile(sorted, 0.5) * 1000,
    p99Us: percentile(sorted, 0.99) * 1000,
    p999Us: percentile(sorted, 0.999) * 1000,
    // Latencies as a log histogram (1% wide buckets: bucket b holds [1.01^b, 1.01^(b+1)) µs),
    // so the benchmark can pool every round's calls into one distribution.
    hist: logHistogram(sorted),
    errors,
    mismatches,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

async function runInterleaved(cmd: InterleavedCommand) {
  const servers = cmd.interleave.map((addr, i) => ({
    client: clientFor(addr), check: cmd.check[i]!,
    lat: new Float64Array(Math.max(1024, Math.ceil((cmd.durationMs / 1000) * 30_000))), n: 0, calls: 0, errors: 0, mismatches: 0,
  }));
  for (const s of servers) await new Promise<void>((res, rej) => s.client.waitForReady(Date.now() + 10_000, (e) => (e ? rej(e) : res())));
  let measuring = false;
  let stop = false;
  const one = (s: (typeof servers)[number], k: number) => new Promise<void>((resolve) => {
    const t0 = performance.now();
    s.client.makeUnaryRequest<Buffer, Answer>(PATH, (b) => b, deserialize, wire[k]!, (err, res) => {
      const dt = performance.now() - t0;
      if (measuring) {
        s.calls++;
        if (s.n < s.lat.length) s.lat[s.n++] = dt;
        if (err) s.errors++;
        else if (s.check) {
          const e = mix[k]!.expected;
          if (res!.allowed !== e.allowed || res!.reason !== e.reason) s.mismatches++;
        }
      }
      resolve();
    });
  });
  const loop = (async () => {
    let k = (loaderIndex * 4099) % wire.length;
    while (!stop) {
      // The same request to both, the first server alternating, so neither always follows the other.
      const [a, b] = k % 2 === 0 ? [servers[0]!, servers[1]!] : [servers[1]!, servers[0]!];
      await one(a, k);
      await one(b, k);
      k = k + 1 === wire.length ? 0 : k + 1;
    }
  })();
  await new Promise((r) => setTimeout(r, cmd.warmupMs));
  measuring = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, cmd.durationMs));
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  stop = true;
  await loop;
  return {
    results: servers.map((s) => {
      const sorted = s.lat.subarray(0, s.n).sort();
      return {
        calls: s.calls, seconds,
        p50Us: percentile(sorted, 0.5) * 1000, p99Us: percentile(sorted, 0.99) * 1000, p999Us: percentile(sorted, 0.999) * 1000,
        hist: logHistogram(sorted), errors: s.errors, mismatches: s.mismatches, cpuSeconds: 0,
      };
    }),
  };
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
