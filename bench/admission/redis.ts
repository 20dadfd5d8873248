/**
 * The benchmark's Redis: a private redis-server on a free port when the
 * binary is on the PATH (scripts/stack.sh installs it), else REDIS_URL's
 * server under a prefix of its own, deleted afterwards.
 */
import { spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { privateRedis, type PrivateRedis } from '../../scripts/lib/redis.ts';
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

export async function startRedis(): Promise<BenchRedis> {
  let own: PrivateRedis | undefined;
  let url: string;
  if (spawnSync('redis-server', ['--version']).status === 0) {
    own = await privateRedis();
    url = own.url;
  } else {
    url = loadConfig().redisUrl;
  }
  const client = new Redis(url, { retryStrategy: (n) => (n > 50 ? null : 100) });
  client.on('error', () => {});
  await client.ping();
  const prefixes = new Set<string>();
  return {
    url,
    private: own !== undefined,
    client,
    prefixes,
    async close() {
      if (!own) {
        for (const p of prefixes) {
          const k = redisKeys(p);
          const keys = [k.epoch, ...Array.from({ length: BUCKETS }, (_, b) => [k.subs(b), k.blocked(b)]).flat()];
          await client.del(...keys);
        }
      }
      client.disconnect();
      await own?.close();
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
