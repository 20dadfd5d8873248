/**
 * The admission state in Redis (core/redis/layout.ts), read through two
 * connections: one for commands (epoch, SMEMBERS per bucket) and one
 * dedicated to the change channel, since a subscribed connection carries
 * nothing else on RESP2 servers.
 *
 * Neither connection queues commands while disconnected (enableOfflineQueue
 * off): a check or load during an outage fails at once instead of piling up,
 * and the sync retries it. Reconnects are quick (≤ 1 s apart) because a
 * replica that missed messages stays stale until it reconnects.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Clock } from '../../core/clock.ts';
import type { Logger } from '../../core/log.ts';
import { BUCKETS, redisKeys } from '../../core/redis/layout.ts';
import type { StateSource } from '../replica/sync.ts';
import { throttled } from '../throttle.ts';

/** Buckets read per round trip: ~1/32 of the numbers in flight at a time. */
const BUCKETS_PER_ROUND_TRIP = 8;

export interface RedisStateOptions {
  url: string;
  prefix: string;
  log: Logger;
  clock: Clock;
  /** Longest wait for one command before the connection is treated as dead (ms). */
  commandTimeoutMs?: number;
}

export function createRedisStateSource(o: RedisStateOptions): StateSource {
  const keys = redisKeys(o.prefix);
  const options: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    autoResubscribe: false, // we subscribe on every 'ready' ourselves, then resync
    maxRetriesPerRequest: 0,
    commandTimeout: o.commandTimeoutMs ?? 5000,
    retryStrategy: (times) => Math.min(50 * times, 1000),
    connectionName: 'phonebill-admission',
  };
  const cmd = new Redis(o.url, options);
  const sub = new Redis(o.url, options);
  const warn = throttled(o.clock, 10_000);
  const onError = (which: string) => (err: Error) =>
    warn((suppressed) => o.log.warn({ err: err.message, which, suppressed }, 'admission: Redis connection error (answering from the replica)'));
  cmd.on('error', onError('commands'));
  sub.on('error', onError('subscription'));
  let closed = false;

  return {
    start(h) {
      sub.on('message', (channel: string, message: string) => {
        if (channel === keys.changes) h.onMessage(message);
      });
      // A load right after subscribing needs the command connection too: both are up before onSubscribed.
      const commandsReady = () => (cmd.status === 'ready' ? Promise.resolve() : new Promise<void>((r) => cmd.once('ready', () => r())));
      sub.on('ready', () => {
        sub.subscribe(keys.changes)
          .then(commandsReady)
          .then(() => { if (!closed && sub.status === 'ready') h.onSubscribed(); }, () => { /* the 'close' that follows reports it */ });
      });
      sub.on('close', () => { if (!closed) h.onLinkDown(); });
      // A failed first connect is retried by retryStrategy like any reconnect.
      sub.connect().catch(() => {});
      cmd.connect().catch(() => {});
    },

    readEpoch: () => cmd.get(keys.epoch),

    async readSet(set, onMembers) {
      const key = set === 'subs' ? keys.subs : keys.blocked;
      for (let b = 0; b < BUCKETS; b += BUCKETS_PER_ROUND_TRIP) {
        const p = cmd.pipeline();
        for (let i = b; i < Math.min(BUCKETS, b + BUCKETS_PER_ROUND_TRIP); i++) p.smembers(key(i));
        const replies = await p.exec();
        if (!replies) throw new Error('redis pipeline returned nothing');
        for (const [err, members] of replies) {
          if (err) throw err;
          onMembers(members as string[]);
        }
      }
    },

    async pingSubscriber() {
      await sub.ping();
    },

    async close() {
      closed = true;
      const quit = (c: Redis) => (c.status === 'ready' ? c.quit().then(() => {}, () => c.disconnect()) : Promise.resolve(c.disconnect()));
      await Promise.all([quit(cmd), quit(sub)]);
    },
  };
}
