/**
 * The benchmark's Redis: a private redis-server on a free port when the
 * binary is on the PATH (scripts/stack.sh installs it), else REDIS_URL's
 * server under a prefix of its own, deleted afterwards.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Redis } from 'ioredis';
import { loadConfig } from '../../core/config.ts';
import { BUCKETS, bucketOf, redisKeys } from '../../core/redis/layout.ts';

export interface BenchRedis {
  url: string;
  private: boolean;
  client: Redis;
  /** Prefixes written (deleted on close when the server is not private). */
  prefixes: Set<string>;
  close(): Promise<void>;
}

const freePort = () => new Promise<number>((resolve, reject) => {
  const s = net.createServer();
  s.once('error', reject);
  s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => resolve(p)); });
});

export async function startRedis(): Promise<BenchRedis> {
  let proc: ChildProcess | undefined;
  let url: string;
  if (spawnSync('redis-server', ['--version']).status === 0) {
    const port = await freePort();
    proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    url = `redis://127.0.0.1:${port}`;
  } else {
    url = loadConfig().redisUrl;
  }
  const client = new Redis(url, { retryStrategy: (n) => (n > 50 ? null : 100) });
  client.on('error', () => {});
  await client.ping();
  const prefixes = new Set<string>();
  return {
    url,
    private: proc !== undefined,
    client,
    prefixes,
    async close() {
      if (!proc) {
        for (const p of prefixes) {
          const k = redisKeys(p);
          const keys = [k.epoch, ...Array.from({ length: BUCKETS }, (_, b) => [k.subs(b), k.blocked(b)]).flat()];
          await client.del(...keys);
        }
      }
      client.disconnect();
      if (proc && proc.exitCode === null) {
        const exited = new Promise((r) => proc!.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
    },
  };
}

/** Writes subscribers 0..n-1 (every `blockedEvery`th blocked) in the layout of core/redis/layout.ts, then the epoch. */
export async function populate(redis: BenchRedis, prefix: string, n: number, numberOf: (i: number) => string, blockedEvery: number): Promise<void> {
  const k = redisKeys(prefix);
  redis.prefixes.add(prefix);
  const subs: string[][] = Array.from({ length: BUCKETS }, () => []);
  const blocked: string[][] = Array.from({ length: BUCKETS }, () => []);
  const flush = async (force: boolean) => {
    const p = redis.client.pipeline();
    for (let b = 0; b < BUCKETS; b++) {
      if (subs[b]!.length >= 1000 || (force && subs[b]!.length)) p.sadd(k.subs(b), ...subs[b]!.splice(0));
      if (blocked[b]!.length >= 1000 || (force && blocked[b]!.length)) p.sadd(k.blocked(b), ...blocked[b]!.splice(0));
    }
    if (p.length) await p.exec();
  };
  for (let i = 0; i < n; i++) {
    const num = numberOf(i);
    const b = bucketOf(num);
    subs[b]!.push(num);
    if (i % blockedEvery === 0) blocked[b]!.push(num);
    if (i % 100_000 === 99_999) await flush(false);
  }
  await flush(true);
  await redis.client.set(k.epoch, `bench-${Date.now()}`);
}
