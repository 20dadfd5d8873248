/**
 * The admission state's layout in Redis, shared by its writer (billing:
 * subscribers and overdue state, recomputed from PostgreSQL) and its readers
 * (every admission replica). Designed for Redis Cluster: the numbers are
 * spread over BUCKETS keys per set, so no single key holds every subscriber
 * and no single key is hot; nothing here needs two keys in one command.
 *
 *   {prefix}subs:{b}     SET of subscriber numbers (E.164) whose bucket is b
 *   {prefix}blocked:{b}  SET of blocked (overdue) numbers whose bucket is b
 *   {prefix}epoch        STRING: id of the last full publication; absent
 *                        after a data loss (FLUSHALL, restart without
 *                        persistence) until the writer rebuilds it
 *   {prefix}changes      pub/sub channel: one message per change,
 *                        "<op> <number>" with op in sub+, sub-, block, unblock,
 *                        or "resync <epoch>" after a full publication
 */
export const BUCKETS = 256;

/** FNV-1a over the number's digits: stable across processes and languages. */
export function bucketOf(number: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < number.length; i++) {
    h ^= number.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % BUCKETS;
}

export interface RedisKeys {
  subs(bucket: number): string;
  blocked(bucket: number): string;
  epoch: string;
  changes: string;
}

export function redisKeys(prefix = 'pb:'): RedisKeys {
  return {
    subs: (b) => `${prefix}subs:${b}`,
    blocked: (b) => `${prefix}blocked:${b}`,
    epoch: `${prefix}epoch`,
    changes: `${prefix}changes`,
  };
}

export type ChangeOp = 'sub+' | 'sub-' | 'block' | 'unblock';
