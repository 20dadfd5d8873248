/**
 * Keeps an in-process Replica current with the Redis state, without ever
 * making the hot path wait for Redis: the hot path reads `current`, a plain
 * field that a finished load swaps in one assignment.
 *
 * - Full load: subscribe to the change channel first, then read the epoch,
 *   every bucket of both sets, and the epoch again (changed: load again).
 *   Changes that arrive during the load are applied to the old replica (still
 *   answering) and replayed onto the new one before the swap; they are
 *   idempotent set operations, so one already in the snapshot is harmless.
 * - A full load runs at start, after every (re)subscription (a reconnect may
 *   have lost messages), on "resync <epoch>" for an epoch not loaded, and
 *   when the periodic epoch check sees a new epoch or a failed earlier load.
 * - The epoch gone (FLUSHALL, restart without persistence): the last replica
 *   keeps answering (going empty would refuse every subscriber) and its age
 *   grows until the writer republishes under a new epoch.
 *
 * Age: time since the replica was last confirmed current, i.e. a check
 * found both connections answering and the loaded epoch still in Redis.
 */
import type { Clock } from '../../core/clock.ts';
import type { Logger } from '../../core/log.ts';
import { throttled } from '../throttle.ts';
import { BLOCKED, NumberTableBuilder, SUBSCRIBER } from './number-table.ts';
import { parseChange, Replica, type Change } from './replica.ts';

/** The Redis side, as the sync needs it (admission/adapters/redis-state.ts). */
export interface StateSource {
  /**
   * Connects. `onSubscribed` after each successful SUBSCRIBE to the change
   * channel (first connect and every reconnect), `onLinkDown` when the
   * subscribed connection is lost, `onMessage` for every message.
   */
  start(handlers: { onMessage(message: string): void; onSubscribed(): void; onLinkDown(): void }): void;
  readEpoch(): Promise<string | null>;
  /** Every member of every bucket of one set, handed over bucket group by bucket group. */
  readSet(set: 'subs' | 'blocked', onMembers: (members: string[]) => void): Promise<void>;
  /** A round trip on the subscribed connection (is the change stream alive?). */
  pingSubscriber(): Promise<void>;
  close(): Promise<void>;
}

export interface ReplicaStatus {
  /** A full load has completed at least once. */
  loaded: boolean;
  /** Confirmed current by the last check (false while Redis is unreachable or the epoch is gone). */
  inSync: boolean;
  /** Seconds since last confirmed current; null before the first load. */
  ageSeconds: number | null;
  epoch: string | null;
  /** The epoch in Redis at the last check: null when it was missing or the check failed. */
  redisEpoch: string | null;
  subscribedLink: boolean;
  subscribers: number;
  blocked: number;
  bytes: number;
  loads: number;
  lastLoadMs: number | null;
  changesApplied: number;
  messagesIgnored: number;
}

export interface ReplicaSync {
  /** The replica answering calls; undefined until the first full load. */
  readonly current: Replica | undefined;
  /** Resolves once the first full load has completed. */
  readonly firstLoad: Promise<void>;
  status(): ReplicaStatus;
  /** Stops the checks and closes the source; `current` stays readable. */
  stop(): Promise<void>;
}

export interface ReplicaSyncOptions {
  source: StateSource;
  clock: Clock;
  log: Logger;
  /** Epoch check period (ADMISSION_EPOCH_CHECK_MS). */
  epochCheckMs: number;
  /** Called once, after the first full load (the server turns SERVING). */
  onFirstLoad?: () => void;
}

export function startReplicaSync(o: ReplicaSyncOptions): ReplicaSync {
  const { source, clock, log } = o;
  let current: Replica | undefined;
  let confirmedAt: number | undefined;
  let inSync = false;
  let redisEpoch: string | null = null;
  let linkUp = false;
  let stopped = false;

  let loading: Promise<void> | undefined;
  let loadWanted = false;
  /** A load failed or was skipped: the next successful check retries it. */
  let loadOwed = false;
  /** Changes received while a load runs, replayed onto the new replica. */
  let replay: Change[] | undefined;
  let loads = 0;
  let lastLoadMs: number | null = null;
  let changesApplied = 0;
  let messagesIgnored = 0;

  let resolveFirst!: () => void;
  const firstLoad = new Promise<void>((r) => { resolveFirst = r; });

  const warnIgnored = throttled(clock, 10_000);
  const warnNoEpoch = throttled(clock, 30_000);
  const warnFailed = throttled(clock, 10_000);

  function outOfSync(): void { inSync = false; }

  function onMessage(message: string): void {
    const c = parseChange(message);
    if (!c) {
      messagesIgnored++;
      warnIgnored((suppressed) => log.warn({ message: message.slice(0, 100), suppressed }, 'admission: ignored a change message that is not "<op> +1NPANXXXXXX" or "resync <epoch>"'));
      return;
    }
    if (c.op === 'resync') {
      if (c.epoch !== current?.epoch) requestLoad(`resync ${c.epoch}`);
      return;
    }
    if (current?.apply(c)) changesApplied++;
    replay?.push(c);
  }

  let loadWhy = '';
  function requestLoad(why: string): void {
    if (stopped) return;
    loadWanted = true;
    loadWhy = why;
    if (loading) return;
    loading = (async () => {
      while (loadWanted && !stopped) {
        loadWanted = false;
        const why = loadWhy;
        try {
          await loadOnce(why);
        } catch (err) {
          loadOwed = true;
          warnFailed((suppressed) => log.error({ err, suppressed, why }, 'admission: full load from Redis failed; answering from the last replica, retrying at the next epoch check'));
          break;
        }
      }
    })().finally(() => { loading = undefined; });
  }

  async function loadOnce(why: string): Promise<void> {
    if (!linkUp) { loadOwed = true; return; } // without the subscription, changes after the snapshot would be lost
    const t0 = performance.now();
    const epoch = await source.readEpoch();
    redisEpoch = epoch;
    if (epoch === null) {
      // Whatever epoch appears next, even one named like ours, is loaded in full: messages may have been lost meanwhile.
      loadOwed = true;
      outOfSync();
      warnNoEpoch((suppressed) => log.warn({ suppressed, loadedEpoch: current?.epoch ?? null }, current
        ? 'admission: the Redis epoch is missing (data loss?); answering from the last replica until billing republishes'
        : 'admission: no state in Redis yet (no epoch); answering by ADMISSION_NO_STATE_POLICY until billing publishes'));
      return;
    }
    replay = [];
    try {
      const b = new NumberTableBuilder();
      await source.readSet('subs', (m) => { for (const n of m) b.add(n, SUBSCRIBER); });
      await source.readSet('blocked', (m) => { for (const n of m) b.add(n, BLOCKED); });
      const after = await source.readEpoch();
      if (after !== epoch) {
        // Republished (or lost) while we read: this snapshot may mix two states.
        redisEpoch = after;
        loadWanted = true;
        return;
      }
      if (b.malformed > 0) log.warn({ malformed: b.malformed }, 'admission: skipped set members that are not +1NPANXXXXXX');
      const next = new Replica(b.build(), epoch);
      for (const c of replay) if (c.op !== 'resync') next.apply(c);
      current = next;
    } finally {
      replay = undefined;
    }
    loads++;
    loadOwed = false;
    lastLoadMs = performance.now() - t0;
    confirmedAt = clock.now();
    inSync = linkUp;
    log.info({ why, epoch, subscribers: current.subscribers, blocked: current.blocked, ms: Math.round(lastLoadMs), bytes: current.bytes() }, 'admission: replica loaded from Redis');
    if (loads === 1) {
      resolveFirst();
      o.onFirstLoad?.();
    }
  }

  let checking = false;
  async function check(): Promise<void> {
    if (checking || stopped) return;
    checking = true;
    try {
      let epoch: string | null;
      try {
        [epoch] = await Promise.all([source.readEpoch(), source.pingSubscriber()]);
      } catch {
        redisEpoch = null;
        outOfSync();
        return;
      }
      redisEpoch = epoch;
      if (epoch === null) {
        outOfSync();
        loadOwed = true;
        if (current) warnNoEpoch((suppressed) => log.warn({ suppressed, loadedEpoch: current?.epoch }, 'admission: the Redis epoch is missing (data loss?); answering from the last replica until billing republishes'));
        return;
      }
      if (epoch !== current?.epoch || loadOwed) {
        outOfSync();
        requestLoad(current ? `epoch ${current.epoch} -> ${epoch}` : `epoch ${epoch} appeared`);
        return;
      }
      if (linkUp && !loading) {
        inSync = true;
        confirmedAt = clock.now();
      }
    } finally {
      checking = false;
    }
  }

  const timer = setInterval(() => { void check(); }, o.epochCheckMs);
  timer.unref();

  source.start({
    onMessage,
    onSubscribed() {
      linkUp = true;
      requestLoad(loads === 0 ? 'start' : 'resubscribed');
    },
    onLinkDown() {
      if (linkUp) log.warn('admission: lost the Redis change subscription; answering from the replica, full resync on reconnect');
      linkUp = false;
      outOfSync();
    },
  });

  return {
    get current() { return current; },
    firstLoad,
    status(): ReplicaStatus {
      const r = current;
      return {
        loaded: r !== undefined,
        inSync,
        ageSeconds: confirmedAt === undefined ? null : Math.max(0, (clock.now() - confirmedAt) / 1000),
        epoch: r?.epoch ?? null,
        redisEpoch,
        subscribedLink: linkUp,
        subscribers: r?.subscribers ?? 0,
        blocked: r?.blocked ?? 0,
        bytes: r?.bytes() ?? 0,
        loads,
        lastLoadMs,
        changesApplied,
        messagesIgnored,
      };
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      // Closing first fails any command a load is waiting on, so stop never waits for a slow Redis.
      await source.close();
      await loading;
    },
  };
}
