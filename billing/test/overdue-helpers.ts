/**
 * Redis plumbing for the payments and overdue tests: a key prefix of one's
 * own on the shared local Redis (cleaned up after), a private redis-server
 * for tests that flush or kill it, reading the bucketed sets back, and a
 * listener on the changes channel.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { BUCKETS, redisKeys } from '../../core/redis/layout.ts';
import type { Pool } from '../../core/postgres/index.ts';

export const SHARED_REDIS_URL = 'redis://127.0.0.1:6379';

export const testPrefix = () => `t_${randomBytes(5).toString('hex')}:`;

export { deleteKeysWithPrefix as deletePrefix } from '../../scripts/lib/redis.ts';

/** Every member of one bucketed set, sorted. */
export async function readSet(redis: Redis, prefix: string, set: 'subs' | 'blocked'): Promise<string[]> {
  const keys = redisKeys(prefix);
  const p = redis.pipeline();
  for (let b = 0; b < BUCKETS; b++) p.smembers(set === 'subs' ? keys.subs(b) : keys.blocked(b));
  const res = (await p.exec())!;
  return res.flatMap(([, v]) => v as string[]).sort();
}

/** Collects messages of the changes channel from the moment it resolves. */
export async function listen(url: string, prefix: string): Promise<{ messages: string[]; waitFor(pred: (m: string) => boolean, timeoutMs?: number): Promise<string>; close(): Promise<void> }> {
  const sub = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: null });
  sub.on('error', () => {});
  await sub.connect();
  const messages: string[] = [];
  const waiters: { pred: (m: string) => boolean; resolve: (m: string) => void }[] = [];
  sub.on('message', (_ch: string, m: string) => {
    messages.push(m);
    for (const w of [...waiters]) if (w.pred(m)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(m); }
  });
  await sub.subscribe(redisKeys(prefix).changes);
  return {
    messages,
    waitFor(pred, timeoutMs = 5000) {
      const seen = messages.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(messages)}`)), timeoutMs);
        waiters.push({ pred, resolve: (m) => { clearTimeout(t); resolve(m); } });
      });
    },
    close: async () => { sub.disconnect(); },
  };
}

export { privateRedis, type PrivateRedis } from '../../scripts/lib/redis.ts';

/** Inserts n subscribers (+1212 555 xxxx style numbers from `base`) in one statement; returns their numbers. */
export async function insertManySubscribers(pool: Pool, n: number, base = 2_000_000): Promise<string[]> {
  const { rows } = await pool.query<{ phone_number: string }>(
    `INSERT INTO subscribers (phone_number, subscription_date, time_zone)
     SELECT '+1212' || lpad((($2::int + i))::text, 7, '0'), DATE '2024-01-15', 'America/New_York'
       FROM generate_series(0, $1::int - 1) AS i
     RETURNING phone_number`,
    [n, base],
  );
  return rows.map((r) => r.phone_number).sort();
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until fn returns true or the timeout passes; returns the elapsed milliseconds. */
export async function until(fn: () => Promise<boolean>, timeoutMs: number, everyMs = 25): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await fn().catch(() => false)) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}
