/**
 * Writes the admission state into Redis in the layout of core/redis/layout.ts:
 * subscriber numbers and blocked numbers in 256 bucketed sets each, an epoch
 * string, and one message on the changes channel per change.
 *
 * Incremental writes touch only what changed (SADD/SREM answer whether they
 * did) and publish one "<op> <number>" message per real change, pipelined. A
 * rebuild rewrites every bucket, then sets a new epoch and publishes
 * "resync <epoch>": readers that see no epoch (data lost) keep their replica
 * until that message and then reload everything. No command names two keys,
 * so the layout works on Redis Cluster.
 */
import { randomBytes } from 'node:crypto';
import type { ChainableCommander } from 'ioredis';
import { BUCKETS, bucketOf, redisKeys, type ChangeOp, type RedisKeys } from '../../../core/redis/layout.ts';
import type { Redis } from './client.ts';

export type StateSet = 'subs' | 'blocked';

const OPS: Record<StateSet, { add: ChangeOp; remove: ChangeOp }> = {
  subs: { add: 'sub+', remove: 'sub-' },
  blocked: { add: 'block', remove: 'unblock' },
};

/** Commands per pipeline round trip, and members per SADD/SREM. */
const PIPELINE = 2000;
const MEMBERS = 1000;

export interface AdmissionPublisher {
  readonly keys: RedisKeys;
  /** Adds numbers to the subscriber buckets; publishes "sub+ N" for each that was new. Returns how many were new. */
  addSubscribers(numbers: readonly string[]): Promise<number>;
  /** Sets one number's blocked state; publishes "block N" or "unblock N" when it changed. Returns whether it changed. */
  setBlocked(number: string, blocked: boolean): Promise<boolean>;
  /** Makes one set's buckets hold exactly `numbers`, writing and publishing only the differences. */
  sync(set: StateSet, numbers: Iterable<string>): Promise<{ added: number; removed: number }>;
  /** Rewrites every bucket, then a new epoch, then "resync <epoch>". Throws if Redis lost data meanwhile (epoch left unset). */
  rebuild(subscriberPages: AsyncIterable<readonly string[]>, blocked: readonly string[]): Promise<{ epoch: string; subscribers: number; blocked: number }>;
  /** The current epoch, or null when Redis has lost (or never had) the state. */
  epoch(): Promise<string | null>;
}

async function run(p: ChainableCommander): Promise<unknown[]> {
  const res = await p.exec();
  if (!res) throw new Error('redis pipeline was discarded');
  return res.map(([err, v]) => {
    if (err) throw err;
    return v;
  });
}

function byBucket(numbers: Iterable<string>): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const n of numbers) {
    const b = bucketOf(n);
    const list = out.get(b);
    if (list) list.push(n); else out.set(b, [n]);
  }
  return out;
}

export function createAdmissionPublisher(redis: Redis, prefix: string): AdmissionPublisher {
  const keys = redisKeys(prefix);
  const keyOf = (set: StateSet, b: number) => (set === 'subs' ? keys.subs(b) : keys.blocked(b));

  /** Queues commands and sends them PIPELINE at a time. */
  function batcher() {
    let p = redis.pipeline();
    let n = 0;
    const results: unknown[] = [];
    const flush = async () => {
      if (n === 0) return results;
      const sent = p;
      p = redis.pipeline();
      n = 0;
      results.push(...(await run(sent)));
      return results;
    };
    return {
      async add(fn: (p: ChainableCommander) => void) {
        fn(p);
        if (++n >= PIPELINE) await flush();
      },
      flush,
    };
  }

  async function publishChanges(ops: { op: ChangeOp; number: string }[]): Promise<void> {
    const b = batcher();
    for (const { op, number } of ops) await b.add((p) => p.publish(keys.changes, `${op} ${number}`));
    await b.flush();
  }

  return {
    keys,

    async addSubscribers(numbers) {
      let added = 0;
      for (let i = 0; i < numbers.length; i += PIPELINE) {
        const chunk = numbers.slice(i, i + PIPELINE);
        const p = redis.pipeline();
        for (const n of chunk) p.sadd(keys.subs(bucketOf(n)), n);
        const res = await run(p);
        const fresh = chunk.filter((_, j) => res[j] === 1);
        await publishChanges(fresh.map((number) => ({ op: 'sub+', number })));
        added += fresh.length;
      }
      return added;
    },

    async setBlocked(number, blocked) {
      const key = keys.blocked(bucketOf(number));
      const changed = (blocked ? await redis.sadd(key, number) : await redis.srem(key, number)) === 1;
      if (changed) await redis.publish(keys.changes, `${blocked ? 'block' : 'unblock'} ${number}`);
      return changed;
    },

    async sync(set, numbers) {
      const want = byBucket(numbers);
      const read = redis.pipeline();
      for (let b = 0; b < BUCKETS; b++) read.smembers(keyOf(set, b));
      const have = (await run(read)) as string[][];
      const writes = batcher();
      const changes: { op: ChangeOp; number: string }[] = [];
      for (let b = 0; b < BUCKETS; b++) {
        const wanted = new Set(want.get(b) ?? []);
        const held = new Set(have[b]);
        const add = [...wanted].filter((n) => !held.has(n));
        const remove = [...held].filter((n) => !wanted.has(n));
        for (let i = 0; i < add.length; i += MEMBERS) { const m = add.slice(i, i + MEMBERS); await writes.add((p) => p.sadd(keyOf(set, b), ...m)); }
        for (let i = 0; i < remove.length; i += MEMBERS) { const m = remove.slice(i, i + MEMBERS); await writes.add((p) => p.srem(keyOf(set, b), ...m)); }
        for (const number of add) changes.push({ op: OPS[set].add, number });
        for (const number of remove) changes.push({ op: OPS[set].remove, number });
      }
      await writes.flush();
      // Messages follow the writes, so a reader acting on one finds the sets already changed.
      await publishChanges(changes);
      return { added: changes.filter((c) => c.op === OPS[set].add).length, removed: changes.filter((c) => c.op === OPS[set].remove).length };
    },

    async rebuild(subscriberPages, blocked) {
      const epoch = `${Date.now()}-${randomBytes(4).toString('hex')}`;
      const clear = batcher();
      await clear.add((p) => p.del(keys.epoch));
      for (let b = 0; b < BUCKETS; b++) { await clear.add((p) => p.del(keys.subs(b))); await clear.add((p) => p.del(keys.blocked(b))); }
      await clear.flush();

      const expected = { subs: new Array<number>(BUCKETS).fill(0), blocked: new Array<number>(BUCKETS).fill(0) };
      const write = async (set: StateSet, numbers: readonly string[]) => {
        const w = batcher();
        for (const [b, list] of byBucket(numbers)) {
          expected[set][b]! += list.length;
          for (let i = 0; i < list.length; i += MEMBERS) { const m = list.slice(i, i + MEMBERS); await w.add((p) => p.sadd(keyOf(set, b), ...m)); }
        }
        await w.flush();
      };
      let subscribers = 0;
      for await (const page of subscriberPages) { await write('subs', page); subscribers += page.length; }
      await write('blocked', blocked);

      await redis.set(keys.epoch, epoch);
      // A loss (FLUSHALL, restart) after some buckets were written but before the
      // epoch was set would leave an epoch over missing data: check every bucket
      // that should hold numbers still does, and that the epoch is ours.
      const check = redis.pipeline();
      check.get(keys.epoch);
      for (let b = 0; b < BUCKETS; b++) check.scard(keys.subs(b)).scard(keys.blocked(b));
      const res = await run(check);
      const lost = res[0] !== epoch || expected.subs.some((n, b) => n > 0 && res[1 + 2 * b] === 0)
        || expected.blocked.some((n, b) => n > 0 && res[2 + 2 * b] === 0);
      if (lost) {
        if (res[0] === epoch) await redis.del(keys.epoch);
        throw new Error('redis lost data while the admission state was being rebuilt');
      }
      await redis.publish(keys.changes, `resync ${epoch}`);
      return { epoch, subscribers, blocked: blocked.length };
    },

    epoch: () => redis.get(keys.epoch),
  };
}
