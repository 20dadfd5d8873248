/**
 * What a process wires: a Redis connection of its own, the overdue service
 * over it, the sweep and the watchdog started; and, for bulk imports, a
 * subscriber repository that publishes each batch it inserts.
 */
import type { Clock } from '../../core/clock.ts';
import type { Config } from '../../core/config.ts';
import type { Logger } from '../../core/log.ts';
import type { Pool } from '../../core/postgres/index.ts';
import type { SubscriberRepository } from '../adapters/postgres/index.ts';
import { createRedisClient } from '../adapters/redis/index.ts';
import { createOverdueService, type OverdueConfig, type OverdueService } from './service.ts';

export interface RunningOverdue {
  overdue: OverdueService;
  /** Stops the sweep and the watchdog, waits for writes in flight, closes the Redis connection. */
  stop(): Promise<void>;
}

export function startOverdue(opts: {
  pool: Pool; clock: Clock; log: Logger;
  config: OverdueConfig & Pick<Config, 'redisUrl'>;
  /** Default true: the periodic sweep (one per deployment is enough, more are harmless). */
  sweep?: boolean;
}): RunningOverdue {
  const redis = createRedisClient({ url: opts.config.redisUrl, log: opts.log.child({ component: 'redis' }), name: 'phonebill-billing-overdue' });
  const overdue = createOverdueService({ pool: opts.pool, redis, clock: opts.clock, log: opts.log, config: opts.config });
  if (opts.sweep !== false) overdue.startSweep();
  overdue.startWatchdog();
  return {
    overdue,
    async stop() {
      await overdue.close();
      redis.disconnect();
    },
  };
}

/** The repository as is, except that numbers a bulk insert added are published to Redis before it returns. */
export function publishingSubscriberRepository(repo: SubscriberRepository, overdue: Pick<OverdueService, 'publishSubscribers'>): SubscriberRepository {
  return {
    ...repo,
    async insertMany(rows) {
      const inserted = await repo.insertMany(rows);
      await overdue.publishSubscribers([...inserted]);
      return inserted;
    },
  };
}
