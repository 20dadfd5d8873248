/**
 * PostgreSQL side of the billing run: the one-runner lock, the run ledger,
 * the due subscribers, and writing bills with COPY.
 *
 * Bills go in through COPY (the fastest way in); the unique key on
 * (subscriber, period start) makes any rerun, concurrent run or resumed run a
 * no-op for periods already billed. Each subscriber's bills and the cursor
 * that follows from them commit together.
 */
import { copyBinary, copyIn, COPY_NULL, withTransaction, type Pool, type PoolClient } from '../../../core/postgres/index.ts';
import { conflict } from '../../../core/errors.ts';
import { mapPgError } from './errors.ts';

/** Every phonebill process agrees on it: one billing runner at a time per database. */
export const BILLING_LOCK_KEY = 0x6269_6c6c; // 'bill'

export interface DueSubscriber {
  id: string;
  phoneNumber: string;
  subscriptionDate: string;
  timeZone: string;
  plan: string;
  /** From the cursor; undefined for a subscriber never seen by a run. */
  nextPeriodIndex?: number;
  lastWatermarkMs?: number;
  /**
   * Subscribers with the same group number share everything above but their id and number
   * (so every due period): the run works those out once per group.
   */
  group: number;
}

/** Bills as tuples of PostgreSQL's binary COPY format (back to back, no header) holding `columns`, as the rating query renders them. */
export interface RenderedBills { columns: readonly string[]; tuples: Buffer; rows: number }

/** A bill line as stored (bills.lines, json) and served. */
export interface BillLineDoc {
  kind: string;
  description: string;
  calls: number;
  billableSeconds: number;
  amountCents: number;
  usagePeriodStart?: string;
  usagePeriodEnd?: string;
  /** On late-usage lines, which mix classes: the part that is pay-per-call (900), which never blocks a subscriber. */
  premiumCents?: number;
}

export interface CursorUpdate { subscriberId: string; nextPeriodIndex: number; nextPeriodEndMs: number; lastWatermarkMs: number | null }

export interface BillingRunStore {
  /** Holds the lock for fn's duration; throws conflict when another run keeps it past waitMs. */
  withRunLock<T>(waitMs: number, fn: () => Promise<T>): Promise<T>;
  startRun(asOfMs: number): Promise<string>;
  finishRun(runId: string, r: { status: 'succeeded' | 'failed'; billsCreated: number; timings: Record<string, number>; error?: string }): Promise<void>;
  /** Subscribers whose next period ended by cutoff, plus those not yet seen by any run. */
  dueSubscribers(cutoffMs: number): Promise<DueSubscriber[]>;
  /**
   * Inserts bills (skipping any period already billed) and moves cursors, in one transaction;
   * returns how many bills were new. The cursors are moved first, so a caller can start the
   * transaction while its bills are still being rated and hand them over as a promise; if it
   * rejects, nothing is written.
   */
  writeBills(bills: RenderedBills | PromiseLike<RenderedBills>, cursors: CursorUpdate[]): Promise<number>;
  /** Moves cursors only (subscribers seen but not due yet). */
  writeCursors(cursors: CursorUpdate[]): Promise<void>;
}

const iso = (ms: number) => new Date(ms).toISOString();
/** A due subscriber in its group's text: its id (36 characters), then its phone number (+1 and ten digits). */
const MEMBER = 36 + 12;

/** iso() remembering what it formatted: the instants of a run's COPY lines repeat (a cohort's period bounds, the run's watermark). */
const isoCached = () => {
  const cache = new Map<number, string>();
  return (ms: number) => {
    let v = cache.get(ms);
    if (v === undefined) { v = iso(ms); cache.set(ms, v); }
    return v;
  };
};

/** One COPY line per cursor; its instants repeat across a cohort (period ends) and a run (watermark), so each is formatted once. */
const cursorLine = () => {
  const isoOf = isoCached();
  return (c: CursorUpdate) =>
    `${c.subscriberId}\t${c.nextPeriodIndex}\t${isoOf(c.nextPeriodEndMs)}\t${c.lastWatermarkMs === null ? COPY_NULL : isoOf(c.lastWatermarkMs)}\n`;
};

/**
 * Staged by COPY, then one MERGE (PostgreSQL 15+): cursors move, and one
 * missing is created, in a single hash join against billing_cursors.
 * Measured, 300,000 cursors in two parallel halves: 3.0-3.3 s of server CPU
 * with INSERT ... ON CONFLICT DO UPDATE (a speculative insert and a conflict
 * per row), 2.4-2.9 s with UPDATE ... FROM then INSERT of the rest, 1.8-2.4 s
 * with MERGE. The staged table needs no ANALYZE: the planner sizes it from
 * its pages, and a hash join is chosen for a chunk, index probes for a few rows.
 */
async function upsertCursors(client: PoolClient, cursors: CursorUpdate[]): Promise<void> {
  if (!cursors.length) return;
  await client.query(`CREATE TEMP TABLE stage_cursors (LIKE billing_cursors) ON COMMIT DROP`);
  await copyIn(client, `COPY stage_cursors (subscriber_id, next_period_index, next_period_end, last_watermark) FROM STDIN`, cursors, cursorLine());
  // A cursor only moves forward: a stale writer can never rewind it. A cursor the run moves
  // was read by the run, so it is there to match (a subscriber's own is created with it,
  // 0032); were one inserted meanwhile after all, the primary key refuses the second insert
  // and the transaction fails rather than losing a move.
  await client.query(`MERGE INTO billing_cursors c USING stage_cursors s ON c.subscriber_id = s.subscriber_id
    WHEN MATCHED AND c.next_period_index <= s.next_period_index THEN
      UPDATE SET next_period_index = s.next_period_index, next_period_end = s.next_period_end,
        last_watermark = COALESCE(s.last_watermark, c.last_watermark)
    WHEN NOT MATCHED THEN
      INSERT (subscriber_id, next_period_index, next_period_end, last_watermark)
      VALUES (s.subscriber_id, s.next_period_index, s.next_period_end, s.last_watermark)`);
}

async function writeBillsTx(pool: Pool, pending: RenderedBills | PromiseLike<RenderedBills>, cursors: CursorUpdate[]): Promise<number> {
  return withTransaction(pool, async (client) => {
    // The statements below probe the primary keys of subscribers and billing_cursors, hot in
    // cache while a run writes. At the default random_page_cost (4, a spinning disk's) the
    // planner hashed all 300,000 cursors to move a day's cohort's 5,000 (~100 ms per writer)
    // instead of probing the index (~10 ms); at 1.1 it probes for a cohort and still hashes
    // for a catch-up's hundred thousands.
    await client.query('SET LOCAL random_page_cost = 1.1');
    // The cursors first: they are known before the bills are rated, so this part of the
    // transaction overlaps the rating. Both commit together or not at all.
    await upsertCursors(client, cursors);
    const bills = await pending;
    if (bills.rows === 0) return 0;
    const columns = bills.columns.join(', ');
    // Under the run lock, with cursors written in the same transactions as bills, the
    // periods given here are unbilled: COPY them straight in. Should one exist after all
    // (a writer outside the lock), the unique key refuses the COPY and the bills go
    // through INSERT ... ON CONFLICT DO NOTHING instead.
    await client.query('SAVEPOINT direct_copy');
    try {
      return await copyBinary(client, `COPY bills (${columns}) FROM STDIN (FORMAT binary)`, bills.tuples);
    } catch (e) {
      if ((e as { code?: string }).code !== '23505') throw e;
      await client.query('ROLLBACK TO SAVEPOINT direct_copy');
      await client.query(`CREATE TEMP TABLE stage_bills (LIKE bills INCLUDING DEFAULTS) ON COMMIT DROP`);
      await copyBinary(client, `COPY stage_bills (${columns}) FROM STDIN (FORMAT binary)`, bills.tuples);
      const r = await client.query(`INSERT INTO bills (${columns}) SELECT ${columns} FROM stage_bills ON CONFLICT DO NOTHING`);
      return r.rowCount ?? 0;
    }
  }).catch(mapPgError);
}

export function createBillingRunStore(pool: Pool): BillingRunStore {
  return {
    async withRunLock(waitMs, fn) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query(`SET lock_timeout = ${Math.max(1, Math.floor(waitMs))}`);
        try {
          await client.query('SELECT pg_advisory_lock($1)', [BILLING_LOCK_KEY]);
        } catch (e) {
          if ((e as { code?: string }).code === '55P03') throw conflict('another billing run is in progress; try again when it has finished', 'BILLING_RUN_IN_PROGRESS');
          throw mapPgError(e);
        } finally {
          await client.query('RESET lock_timeout').catch(() => {});
        }
        try {
          return await fn();
        } finally {
          // A session lock: release it on this connection, or drop the connection.
          await client.query('SELECT pg_advisory_unlock($1)', [BILLING_LOCK_KEY]).catch((e: Error) => { broken = e; });
        }
      } finally {
        client.release(broken);
      }
    },

    async startRun(asOfMs) {
      const { rows } = await pool.query<{ id: string }>(`INSERT INTO billing_runs (as_of) VALUES ($1) RETURNING id`, [new Date(asOfMs)]).catch(mapPgError);
      return rows[0]!.id;
    },

    async finishRun(runId, r) {
      await pool.query(
        `UPDATE billing_runs SET finished_at = now(), status = $2, bills_created = $3, timings = $4, error = $5 WHERE id = $1`,
        [runId, r.status, r.billsCreated, JSON.stringify(r.timings), r.error ?? null],
      ).catch(mapPgError);
    },

    async dueSubscribers(cutoffMs) {
      // Every subscriber has a cursor (0032): one scan of the narrow cursor table, and only the
      // due rows joined to their subscribers. A catch-up reads every subscriber, and building
      // eight strings per row (and the garbage of it) was most of this stage: the due subscribers
      // come grouped by what they share (anchor date, zone, plan, cursor), each group's ids and
      // phone numbers as one text of fixed-width members (a uuid is 36 characters, an E.164 NANP
      // number 12: the schema checks both), and the watermark as epoch milliseconds.
      // In a transaction of its own, for work_mem: the join hashes every subscriber in a catch-up
      // (~30 MB for 300,000), and at the default 4 MB it went to disk in batches (join and grouping
      // of 300,000: 1.2 s against 0.75 s in memory).
      const rows = await withTransaction(pool, async (client) => {
        await client.query(`SET LOCAL work_mem = '64MB'`);
        return (await client.query<[string, string, string, number, boolean, number | null, string, number]>({
          text: `SELECT s.subscription_date, s.time_zone, s.plan, c.next_period_index, c.next_period_end = '-infinity' AS unplaced,
                        (extract(epoch FROM c.last_watermark) * 1000)::float8, string_agg(s.id::text || s.phone_number, ''), count(*)
                   FROM billing_cursors c JOIN subscribers s ON s.id = c.subscriber_id
                  WHERE c.next_period_end <= $1 AND s.status <> 'closed'
                  GROUP BY s.subscription_date, s.time_zone, s.plan, c.next_period_index, c.next_period_end = '-infinity', c.last_watermark`,
          values: [new Date(cutoffMs)],
          rowMode: 'array',
        })).rows;
      }).catch(mapPgError);
      const out: DueSubscriber[] = [];
      for (const [group, [subscriptionDate, timeZone, plan, nextPeriodIndex, unplaced, lastWatermarkMs, members, count]] of rows.entries()) {
        if (members.length !== MEMBER * count) throw new Error(`due subscribers: a group of ${count} came as ${members.length} characters, not ${MEMBER} each`);
        for (let at = 0; at < members.length; at += MEMBER) {
          const sub: DueSubscriber = { id: members.slice(at, at + 36), phoneNumber: members.slice(at + 36, at + MEMBER), subscriptionDate, timeZone, plan, group };
          // A cursor not placed yet is a subscriber never seen by a run.
          if (!unplaced) sub.nextPeriodIndex = nextPeriodIndex;
          if (lastWatermarkMs !== null) sub.lastWatermarkMs = lastWatermarkMs;
          out.push(sub);
        }
      }
      return out;
    },

    writeBills: (bills, cursors) => writeBillsTx(pool, bills, cursors),

    async writeCursors(cursors) {
      if (cursors.length) await withTransaction(pool, (client) => upsertCursors(client, cursors)).catch(mapPgError);
    },
  };
}

export interface BillContext {
  phoneNumber: string;
  subscriptionDate: string;
  timeZone: string;
  plan: string;
  /** The previous bill's watermark; undefined for a first bill. */
  previousWatermarkMs?: number;
}

/** What itemizing a bill's calls needs beyond the bill: its subscriber and the previous bill's watermark. */
export async function billContext(pool: Pool, subscriberId: string, periodIndex: number): Promise<BillContext | undefined> {
  const { rows } = await pool.query<{ phone_number: string; subscription_date: string; time_zone: string; plan: string; prev: Date | null }>(
    `SELECT s.phone_number, s.subscription_date, s.time_zone, s.plan,
            (SELECT b.watermark FROM bills b WHERE b.subscriber_id = s.id AND b.period_index = $2 - 1) AS prev
       FROM subscribers s WHERE s.id = $1`,
    [subscriberId, periodIndex],
  ).catch(mapPgError);
  const r = rows[0];
  if (!r) return undefined;
  return {
    phoneNumber: r.phone_number, subscriptionDate: r.subscription_date, timeZone: r.time_zone, plan: r.plan,
    ...(r.prev ? { previousWatermarkMs: r.prev.getTime() } : {}),
  };
}
