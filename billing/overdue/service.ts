/**
 * Overdue state: evaluated in PostgreSQL (the system of record), published to
 * Redis for the admission service.
 *
 * When it is evaluated and published:
 *  - after every billing run (runBilling's afterBills hook, as of the run's asOf);
 *  - after every payment, for the payer only, before the payment is answered;
 *  - by a periodic sweep (OVERDUE_SWEEP_SECONDS), so a due time passing blocks
 *    within one interval; the sweep also publishes subscribers created by
 *    other processes (a CLI import) since the last sweep;
 *  - by a watchdog (every REDIS_REBUILD_CHECK_SECONDS and on every reconnect):
 *    no epoch in Redis (FLUSHALL, restart without persistence) → full rebuild;
 *    after a reconnect or any failed write → a full diff (reconcile).
 *
 * Redis never fails a payment or a billing run: a failed or skipped write is
 * logged and marks the state dirty, and the watchdog reconciles once Redis
 * answers. The cost of that choice: while Redis is unreachable (and until the
 * next watchdog tick after it returns) admission answers from its last
 * replica, so a payment made meanwhile unblocks a few seconds late.
 *
 * Every Redis write of this process goes through one queue, and the PostgreSQL
 * read it publishes is made inside that queue, so a later state is never
 * overwritten by an earlier one within a process. Across billing replicas the
 * next sweep converges.
 */
import type { Clock } from '../../core/clock.ts';
import type { Config } from '../../core/config.ts';
import type { Logger } from '../../core/log.ts';
import type { Pool } from '../../core/postgres/index.ts';
import { createOverdueRepository, type OverdueRepository } from '../adapters/postgres/overdue.ts';
import { createAdmissionPublisher, isReady, type AdmissionPublisher, type Redis } from '../adapters/redis/index.ts';

/** How long a payment or a new subscriber waits for its Redis write before answering anyway. */
export const PUBLISH_WAIT_MS = 2000;
/** Subscribers are read from PostgreSQL this many at a time for a rebuild. */
const PAGE = 50_000;
/** The sweep re-reads subscribers created this long before the last one it saw (transactions commit after created_at). */
const CREATED_OVERLAP_MS = 60_000;

export type OverdueConfig = Pick<Config, 'redisKeyPrefix' | 'overdueSweepSeconds' | 'redisRebuildCheckSeconds'>;

export interface OverdueServiceDeps {
  pool: Pool;
  /** Absent: evaluation only, nothing published (e.g. a process without Redis). */
  redis?: Redis;
  clock: Clock;
  log: Logger;
  config: OverdueConfig;
}

export interface EvaluationSummary {
  [k: string]: unknown;
  asOf: string;
  blocked: number;
  statusChanges: number;
  creditMoves: number;
  /** Changes written to Redis, or 'deferred' when Redis was not written (the watchdog will). */
  published: { blocked: number; unblocked: number } | 'deferred';
}

export type WatchdogOutcome = 'ok' | 'rebuilt' | 'reconciled' | 'unreachable' | 'failed' | 'no-redis';

export interface OverdueService {
  /** Evaluates as of max(asOf, latest) (default: the clock) and publishes the blocked set. Throws only on PostgreSQL errors. */
  evaluateAndPublish(asOfMs?: number): Promise<EvaluationSummary>;
  /** After a payment: publishes the payer's blocked state. Never throws; waits at most PUBLISH_WAIT_MS. */
  onPayment(p: { subscriberId: string }): Promise<void>;
  /** After a subscriber is created: publishes the number ("sub+"). Never throws; waits at most PUBLISH_WAIT_MS. */
  onSubscriberCreated(s: { phoneNumber: string }): Promise<void>;
  /** After a bulk import batch: publishes the numbers. Never throws. */
  publishSubscribers(numbers: readonly string[]): Promise<void>;
  /** One watchdog check, run now. */
  checkRedis(): Promise<WatchdogOutcome>;
  /** Rewrites the whole state in Redis from PostgreSQL (new epoch, "resync"). */
  rebuild(): Promise<{ epoch: string; subscribers: number; blocked: number }>;
  startSweep(): void;
  startWatchdog(): void;
  /** Stops the timers and waits for writes in flight. Does not close the Redis connection. */
  close(): Promise<void>;
}

export function createOverdueService(deps: OverdueServiceDeps): OverdueService {
  const log = deps.log.child({ component: 'overdue' });
  const repo: OverdueRepository = createOverdueRepository(deps.pool);
  const redis = deps.redis;
  const publisher: AdmissionPublisher | undefined = redis && createAdmissionPublisher(redis, deps.config.redisKeyPrefix);
  const ready = () => !!redis && isReady(redis);

  // Unknown until the first reconcile: what was published while this process was down.
  let dirty = true;
  // Subscribers created after this instant (PostgreSQL's clock) may be missing
  // from Redis; null until the first full publication.
  let createdAfter: Date | null = null;
  /** Numbers created after createdAfter already published, with their creation time. */
  const recent = new Map<string, number>();
  let sweepTimer: NodeJS.Timeout | undefined;
  let watchTimer: NodeJS.Timeout | undefined;
  let checking: Promise<WatchdogOutcome> | undefined;
  let sweeping = false;
  let closed = false;

  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const out = queue.then(fn);
    queue = out.catch(() => {});
    return out;
  };

  const deferred = (what: string, err?: unknown) => {
    dirty = true;
    if (err) log.warn({ err }, `${what}: redis write failed; the watchdog republishes once redis answers`);
  };

  /** Waits for a queued write at most PUBLISH_WAIT_MS; the write itself still happens later. */
  const bounded = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    if (!publisher || !ready()) { deferred(what); return; }
    let timer: NodeJS.Timeout | undefined;
    const write = serial(fn).catch((err) => deferred(what, err));
    const late = new Promise<void>((resolve) => { timer = setTimeout(() => { deferred(what); log.warn({ waitedMs: PUBLISH_WAIT_MS }, `${what}: answering before the redis write completed`); resolve(); }, PUBLISH_WAIT_MS); });
    try { await Promise.race([write, late]); } finally { clearTimeout(timer); }
  };

  async function* subscriberPages(): AsyncGenerator<string[]> {
    for (let after: string | null = null; ;) {
      const page = await repo.subscriberNumbers(after, PAGE);
      if (page.length) yield page;
      if (page.length < PAGE) return;
      after = page[page.length - 1]!;
    }
  }

  async function allSubscribers(): Promise<string[]> {
    const all: string[] = [];
    for await (const page of subscriberPages()) all.push(...page);
    return all;
  }

  /**
   * New subscribers written by other processes since the last look; runs
   * inside the queue. created_at is the inserting transaction's start, and
   * the transaction may commit later: each look re-reads from CREATED_OVERLAP_MS
   * before the previous look (by PostgreSQL's clock) and skips the numbers it
   * already published from that window.
   */
  async function publishCreatedSince(): Promise<void> {
    // Before the first full publication there is nothing to add to.
    if (!publisher || createdAfter === null) return;
    const lookedAt = await repo.dbNow();
    const rows = await repo.createdSince(createdAfter);
    const fresh = rows.filter((r) => !recent.has(r.phoneNumber)).map((r) => r.phoneNumber);
    if (fresh.length) {
      const added = await publisher.addSubscribers(fresh);
      if (added) log.info({ added }, 'published subscribers created elsewhere');
    }
    createdAfter = new Date(lookedAt.getTime() - CREATED_OVERLAP_MS);
    for (const r of rows) recent.set(r.phoneNumber, r.createdAt.getTime());
    for (const [n, t] of recent) if (t <= createdAfter.getTime()) recent.delete(n);
  }

  async function rebuildNow() {
    dirty = false;
    const t0 = performance.now();
    const startedAt = await repo.dbNow();
    const ev = await repo.evaluate(deps.clock.now());
    const out = await publisher!.rebuild(subscriberPages(), ev.blocked);
    createdAfter = new Date(startedAt.getTime() - CREATED_OVERLAP_MS);
    recent.clear();
    log.info({ ...out, ms: Math.round(performance.now() - t0) }, 'admission state rebuilt in redis');
    return out;
  }

  async function reconcileNow() {
    dirty = false;
    const t0 = performance.now();
    const startedAt = await repo.dbNow();
    const subs = await publisher!.sync('subs', await allSubscribers());
    const ev = await repo.evaluate(deps.clock.now());
    const blocked = await publisher!.sync('blocked', ev.blocked);
    createdAfter = new Date(startedAt.getTime() - CREATED_OVERLAP_MS);
    recent.clear();
    log.info({ subs, blocked, ms: Math.round(performance.now() - t0) }, 'admission state reconciled with redis');
  }

  const checkRedis = (): Promise<WatchdogOutcome> => {
    if (!publisher) return Promise.resolve('no-redis');
    // One check at a time; a tick arriving meanwhile shares the running one.
    checking ??= serial(async (): Promise<WatchdogOutcome> => {
      if (!ready()) return 'unreachable';
      try {
        if ((await publisher.epoch()) === null) {
          log.warn('no admission state epoch in redis (data lost or first start): rebuilding from PostgreSQL');
          await rebuildNow();
          return 'rebuilt';
        }
        if (dirty) { await reconcileNow(); return 'reconciled'; }
        return 'ok';
      } catch (err) {
        dirty = true;
        log.warn({ err }, 'admission state check failed; retrying at the next tick');
        return 'failed';
      }
    }).finally(() => { checking = undefined; });
    return checking;
  };

  const onReady = () => {
    // Writes may have failed or been lost (AOF fsync) while disconnected.
    dirty = true;
    if (!closed && watchTimer) void checkRedis();
  };

  const evaluateAndPublish = (asOfMs?: number): Promise<EvaluationSummary> => serial(async () => {
    const t0 = performance.now();
    const ev = await repo.evaluate(asOfMs ?? deps.clock.now());
    const t1 = performance.now();
    let published: EvaluationSummary['published'] = 'deferred';
    if (publisher && ready()) {
      try {
        const r = await publisher.sync('blocked', ev.blocked);
        published = { blocked: r.added, unblocked: r.removed };
        await publishCreatedSince();
      } catch (err) {
        deferred('overdue publication', err);
        published = 'deferred';
      }
    } else if (publisher) {
      deferred('overdue publication');
    }
    const summary: EvaluationSummary = {
      asOf: new Date(ev.asOfMs).toISOString(), blocked: ev.blocked.length, statusChanges: ev.statusChanges, creditMoves: ev.creditMoves, published,
    };
    log.info({ ...summary, evaluateMs: Math.round(t1 - t0), publishMs: Math.round(performance.now() - t1) }, 'overdue state evaluated');
    return summary;
  });

  return {
    evaluateAndPublish,

    onPayment: (p) => bounded('payment', async () => {
      const st = await repo.subscriberState(p.subscriberId, deps.clock.now());
      if (st?.active) await publisher!.setBlocked(st.phoneNumber, st.blocked);
    }),

    onSubscriberCreated: (s) => bounded('new subscriber', () => publisher!.addSubscribers([s.phoneNumber])),

    publishSubscribers: (numbers) => (numbers.length ? bounded('imported subscribers', () => publisher!.addSubscribers(numbers)) : Promise.resolve()),

    checkRedis,

    rebuild: () => {
      if (!publisher) return Promise.reject(new Error('no redis configured'));
      return serial(rebuildNow);
    },

    startSweep() {
      if (sweepTimer || closed) return;
      sweepTimer = setInterval(() => {
        if (sweeping) return;
        sweeping = true;
        evaluateAndPublish()
          .catch((err) => log.error({ err }, 'overdue sweep failed'))
          .finally(() => { sweeping = false; });
      }, deps.config.overdueSweepSeconds * 1000);
      sweepTimer.unref();
      log.info({ everySeconds: deps.config.overdueSweepSeconds }, 'overdue sweep started');
    },

    startWatchdog() {
      if (watchTimer || closed || !redis) return;
      watchTimer = setInterval(() => void checkRedis(), deps.config.redisRebuildCheckSeconds * 1000);
      watchTimer.unref();
      redis.on('ready', onReady);
      void checkRedis();
    },

    async close() {
      closed = true;
      clearInterval(sweepTimer);
      clearInterval(watchTimer);
      sweepTimer = watchTimer = undefined;
      redis?.off('ready', onReady);
      await queue;
    },
  };
}
