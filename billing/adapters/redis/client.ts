/**
 * The billing side's Redis connection. Tuned so that Redis trouble never
 * holds up a payment or a billing run: no offline queue (a command while
 * disconnected fails at once instead of waiting), a command timeout, and
 * fast reconnects (the watchdog needs Redis back within seconds to rebuild
 * lost state). Errors are logged once per outage, not once per retry.
 */
import { Redis } from 'ioredis';
import type { Logger } from '../../../core/log.ts';

export type { Redis };

export interface RedisClientOptions {
  url: string;
  log: Logger;
  /** Shown in CLIENT LIST. */
  name?: string;
  /** Milliseconds before a command fails (default 2000). */
  commandTimeoutMs?: number;
}

export function createRedisClient(opts: RedisClientOptions): Redis {
  const log = opts.log;
  const redis = new Redis(opts.url, {
    connectionName: opts.name ?? 'phonebill-billing',
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: opts.commandTimeoutMs ?? 2000,
    connectTimeout: 2000,
    // Reconnect within half a second at worst: lost state is rebuilt on reconnect.
    retryStrategy: (times) => Math.min(50 * times, 500),
    lazyConnect: false,
  });
  let down = false;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    log.warn({ err: { message: err.message, code: (err as { code?: string }).code } }, 'redis unreachable; retrying (PostgreSQL stays the truth, state is republished on reconnect)');
  });
  redis.on('ready', () => {
    if (down) log.info('redis reachable again');
    down = false;
  });
  return redis;
}

/** True when commands can be sent now. */
export const isReady = (redis: Redis) => redis.status === 'ready';
