/**
 * PostgreSQL side of the billing run: the one-runner lock, the run ledger,
 * the due subscribers, and writing bills with COPY.
 *
 * Bills go in through COPY (the fastest way in); the unique key on
 * (subscriber, period start) makes any rerun, concurrent run or resumed run a
 * no-op for periods already billed. A subscriber either follows the cursor of
 * its group (the subscribers who share its subscription date and zone, and so
 * every period), which the run moves once all of the group's bills are in
 * (settleRun), or has a cursor of its own, which moves with its bills: the
 * statement that inserts them moves it (a trigger, migrations 0033, 0034).
 */
import { copyBinary, withTransaction, type ByteSpans, type Pool, type PoolClient } from '../../../core/postgres/index.ts';
import { conflict } from '../../../core/errors.ts';
import { UUID_RE } from '../../auth/principal.ts';
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
  /** The billing group whose cursor this subscriber follows; undefined for a cursor of its own. */
  billingGroup?: number;
  /**
   * Subscribers with the same group number share everything above but their id and number
   * (so every due period): the run works those out once per group.
   */
  group: number;
}

/**
 * Bills as tuples of PostgreSQL's binary COPY format (back to back, no header, or picked out of the
 * rating query's result) holding `columns`, as the rating query renders them.
 */
export interface RenderedBills { columns: readonly string[]; tuples: Buffer | ByteSpans; rows: number }

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

/** A billing group's cursor moved (forward only); a null watermark keeps the group's. */
export interface GroupMove { groupId: number; nextPeriodIndex: number; nextPeriodEndMs: number; lastWatermarkMs: number | null }

/** What a run settles once its bills are in, in one transaction. */
export interface RunSettlement {
  /** Cursors of their own moved without bills (subscribers seen but not due yet). */
  cursors: CursorUpdate[];
  /** Following subscribers the run did not bill (skipped): pinned where their groups stand, before the groups move. */
  pins: string[];
  groups: GroupMove[];
}

export interface BillingRunStore {
  /** Holds the lock for fn's duration; throws conflict when another run keeps it past waitMs. */
  withRunLock<T>(waitMs: number, fn: () => Promise<T>): Promise<T>;
  startRun(asOfMs: number): Promise<string>;
  finishRun(runId: string, r: { status: 'succeeded' | 'failed'; billsCreated: number; timings: Record<string, number>; error?: string }): Promise<void>;
  /** Subscribers whose next period ended by cutoff, plus those not yet seen by any run. */
  dueSubscribers(cutoffMs: number): Promise<DueSubscriber[]>;
  /**
   * Inserts bills (skipping any period already billed) in one transaction, their insert moving
   * their subscribers' cursors past them (each bill names next_period_end); returns how many bills
   * were new. A caller can start it while its bills are still being rated and hand them over as a
   * promise; if it rejects, nothing is written.
   */
  writeBills(bills: RenderedBills | PromiseLike<RenderedBills>): Promise<number>;
  /** Moves cursors without bills (subscribers seen but not due yet). */
  writeCursors(cursors: CursorUpdate[]): Promise<void>;
  /**
   * Before a run reads its due subscribers: the subscribers following their groups that runs
   * which never settled (killed, failed) billed get cursors of their own, past their bills (their
   * groups did not move). Returns how many were pinned.
   */
  repairUnsettled(runId: string): Promise<number>;
  /** Pins, cursors and group moves of a run whose bills are all in, and the run marked settled, in one transaction. */
  settleRun(runId: string, s: RunSettlement): Promise<void>;
}

/** A due subscriber in its group's text: its id (36 characters), then its phone number (+1 and ten digits). */
const MEMBER = 36 + 12;

/**
 * Moves cursors of their own (not those of subscribers following their group, whose own fields
 * are then unused: 0034) forward without bills (a bill's insert moves such a cursor itself), in
 * one UPDATE by the primary key: each cursor names its destination (next period, its end,
 * watermark) by number, and a run's cursors go to few destinations (a period end per anniversary
 * day and zone).
 *
 * A cursor only moves forward: a stale writer never rewinds one. A cursor the run moves was read
 * by the run, so it is there to update (a subscriber's own is created with it, 0032); were one
 * missing after all, it is inserted (the primary key refusing a concurrent second insert).
 */
async function moveCursors(client: PoolClient, cursors: readonly CursorUpdate[]): Promise<void> {
  if (!cursors.length) return;
  // Destinations numbered from 1, by next period index, then its end, then watermark (null: keep the cursor's).
  const numbers = new Map<number, Map<number, Map<number | null, number>>>();
  const idx: number[] = [], ends: Date[] = [], watermarks: (Date | null)[] = [];
  const ids: string[] = [], dests: number[] = [];
  for (const c of cursors) {
    let byEnd = numbers.get(c.nextPeriodIndex);
    if (!byEnd) numbers.set(c.nextPeriodIndex, (byEnd = new Map()));
    let byWatermark = byEnd.get(c.nextPeriodEndMs);
    if (!byWatermark) byEnd.set(c.nextPeriodEndMs, (byWatermark = new Map()));
    let no = byWatermark.get(c.lastWatermarkMs);
    if (no === undefined) {
      byWatermark.set(c.lastWatermarkMs, (no = idx.push(c.nextPeriodIndex)));
      ends.push(new Date(c.nextPeriodEndMs));
      watermarks.push(c.lastWatermarkMs === null ? null : new Date(c.lastWatermarkMs));
    }
    ids.push(c.subscriberId);
    dests.push(no);
  }
  // The two long arrays as array literals: ids are UUIDs (moveCursors' callers read them from the
  // database) and destinations integers, neither with anything to quote, so a join does what the
  // driver's per-element escaping did (~0.3 s of the run's main thread per 300,000 cursors). Each
  // id is checked to be a UUID's text first, so none can become two elements or need quoting.
  for (const id of ids) if (!UUID_RE.test(id)) throw new TypeError(`cursor of a subscriber whose id is not a UUID: ${JSON.stringify(id)}`);
  const values = [`{${ids.join(',')}}`, `{${dests.join(',')}}`, idx, ends, watermarks];
  const moves = `unnest($1::uuid[], $2::int4[]) AS m(id, dest), (SELECT $3::int4[] AS idx, $4::timestamptz[] AS ends, $5::timestamptz[] AS watermarks) AS d`;
  const r = await client.query(`UPDATE billing_cursors c
       SET next_period_index = d.idx[m.dest], next_period_end = d.ends[m.dest], last_watermark = COALESCE(d.watermarks[m.dest], c.last_watermark)
      FROM ${moves}
     WHERE c.subscriber_id = ANY($1::uuid[]) AND c.subscriber_id = m.id AND c.next_period_index <= d.idx[m.dest]`, values);
  if ((r.rowCount ?? 0) < ids.length) {
    // Some are ahead already (left alone) or missing (inserted here).
    // Of its own, in its subscriber's group (0034: created with the subscriber, or with this cursor).
    await client.query(`INSERT INTO billing_groups (subscription_date, time_zone)
      SELECT DISTINCT s.subscription_date, s.time_zone FROM subscribers s WHERE s.id = ANY($1::uuid[])
      ON CONFLICT (subscription_date, time_zone) DO NOTHING`, [values[0]]);
    await client.query(`INSERT INTO billing_cursors (subscriber_id, next_period_index, next_period_end, last_watermark, group_id)
      SELECT m.id, d.idx[m.dest], d.ends[m.dest], d.watermarks[m.dest], g.id
        FROM ${moves}, subscribers s, billing_groups g
       WHERE s.id = m.id AND g.subscription_date = s.subscription_date AND g.time_zone = s.time_zone
      ON CONFLICT (subscriber_id) DO NOTHING`, values);
  }
}

async function writeBillsTx(pool: Pool, pending: RenderedBills | PromiseLike<RenderedBills>): Promise<number> {
  return withTransaction(pool, async (client) => {
    // A run's bills: those of subscribers following their group leave the cursors alone (the run
    // moves the groups once every bill is in, settleRun); cursors of their own move (0034).
    await client.query(`SET LOCAL phonebill.billing_run = 'on'`);
    // The COPY's trigger moves the bills' cursors, probing the primary key of billing_cursors,
    // hot in cache while a run writes. At the default random_page_cost (4, a spinning disk's)
    // the planner hashed all 300,000 cursors to move a day's cohort's 5,000 (~100 ms per
    // writer) instead of probing the index (~10 ms); at 1.1 it probes for a cohort and still
    // hashes for a catch-up's hundred thousands.
    await client.query('SET LOCAL random_page_cost = 1.1');
    // The COPY's trigger reads the statement's new bills from a transition table, which PostgreSQL
    // keeps in work_mem: at the default 4 MB, a writer's 50,000 bills (~1 KB each) went through
    // temporary files, written once and read three times (309 MB of them per 300,000 bills).
    await client.query(`SET LOCAL work_mem = '256MB'`);
    const bills = await pending;
    if (bills.rows === 0) return 0;
    const columns = bills.columns.join(', ');
    // Under the run lock, with cursors moved by the very statements that insert bills, the
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
      // The bills inserted moved their cursors of their own; those that existed already moved theirs
      // when they were inserted, but a cursor rewound since (to re-examine a subscriber's periods) is
      // behind them. Each goes past the subscriber's latest period given here, with the watermark of
      // the bill as stored (an older bill's: the calls ingested since are late usage on the next
      // bill). A subscriber following its group stays with it (the run moves the group past the
      // same period, with the same watermark) unless that bill as stored has another watermark: it
      // is then pinned, its own cursor placed as above.
      await client.query(`UPDATE billing_cursors c
           SET next_period_index = b.period_index + 1, next_period_end = COALESCE(b.next_period_end, l.next_period_end), last_watermark = b.watermark,
               follows = false
          FROM (SELECT DISTINCT ON (subscriber_id) subscriber_id, period_start, period_index, next_period_end, watermark
                  FROM stage_bills ORDER BY subscriber_id, period_index DESC) l
          JOIN bills b ON b.subscriber_id = l.subscriber_id AND b.period_start = l.period_start
         WHERE c.subscriber_id = l.subscriber_id
           AND CASE WHEN c.follows THEN b.watermark <> l.watermark ELSE c.next_period_index <= b.period_index + 1 END`);
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
      // In a transaction of its own, for settings of its own:
      // - work_mem: the join hashes every subscriber in a catch-up (~30 MB for 300,000), and at the
      //   default 4 MB it went to disk in batches (join and grouping of 300,000: 1.2 s against 0.75 s);
      // - enable_sort off: the planner takes every due subscriber for a group of its own (it cannot
      //   know they share anchor, zone, plan and cursor) and sorted 300,000 rows to group them;
      //   hashed, the groups are a few hundred;
      // - parallel plans however small the tables: the run waits for this query, on cores that are
      //   otherwise idle. Hashed and in parallel: 0.40-0.47 s against 0.77-1.13 s (300,000 due).
      // - random_page_cost 2: the subscribers of a day's cohort (~10,000 of 300,000) are looked up
      //   by their key, and a catch-up's hashed. At the default 4 the planner hashed every
      //   subscriber for a cohort too (medians of seven: 217 ms against 106); at 1.1 it probed for
      //   a catch-up's 300,000 (774 ms against 574).
      const rows = await withTransaction(pool, async (client) => {
        await client.query(`SET LOCAL work_mem = '64MB'; SET LOCAL enable_sort = off; SET LOCAL random_page_cost = 2;
          SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0; SET LOCAL min_parallel_table_scan_size = 0`);
        // Due positions: the members of due groups (by the group index: a day's cohort reads only its
        // groups' members), and the due cursors of their own (the narrow table read whole). The due
        // groups are read first and named by id: the planner then estimates their members from the
        // cursors' statistics, which hold still, rather than from the groups' positions, which every
        // run moves (with the groups' statistics from before a run moved them, it took a day's
        // cohort for all subscribers and hashed every one of them: 172-273 ms against ~100).
        const due = (await client.query<{ id: string }>(`SELECT id FROM billing_groups WHERE next_period_end <= $1`, [new Date(cutoffMs)])).rows.map((r) => r.id);
        return (await client.query<[string, string, string, number, boolean, number | null, string | null, string, number]>({
          text: `SELECT s.subscription_date, s.time_zone, s.plan, p.next_period_index, p.next_period_end = '-infinity' AS unplaced,
                        (extract(epoch FROM p.last_watermark) * 1000)::float8, p.group_id, string_agg(s.id::text || s.phone_number, ''), count(*)
                   FROM (SELECT c.subscriber_id, g.id AS group_id, g.next_period_index, g.next_period_end, g.last_watermark
                           FROM billing_groups g JOIN billing_cursors c ON c.group_id = g.id AND c.follows
                          WHERE g.id = ANY($2::bigint[]) AND c.group_id = ANY($2::bigint[]) AND g.next_period_end <= $1
                         UNION ALL
                         SELECT c.subscriber_id, NULL, c.next_period_index, c.next_period_end, c.last_watermark
                           FROM billing_cursors c
                          WHERE NOT c.follows AND c.next_period_end <= $1) p
                   JOIN subscribers s ON s.id = p.subscriber_id
                  WHERE s.status <> 'closed'
                  GROUP BY s.subscription_date, s.time_zone, s.plan, p.next_period_index, p.next_period_end = '-infinity', p.last_watermark, p.group_id`,
          values: [new Date(cutoffMs), due],
          rowMode: 'array',
        })).rows;
      }).catch(mapPgError);
      const out: DueSubscriber[] = [];
      for (const [group, [subscriptionDate, timeZone, plan, nextPeriodIndex, unplaced, lastWatermarkMs, billingGroup, members, count]] of rows.entries()) {
        if (members.length !== MEMBER * count) throw new Error(`due subscribers: a group of ${count} came as ${members.length} characters, not ${MEMBER} each`);
        for (let at = 0; at < members.length; at += MEMBER) {
          const sub: DueSubscriber = { id: members.slice(at, at + 36), phoneNumber: members.slice(at + 36, at + MEMBER), subscriptionDate, timeZone, plan, group };
          // A cursor not placed yet is a subscriber never seen by a run.
          if (!unplaced) sub.nextPeriodIndex = nextPeriodIndex;
          if (lastWatermarkMs !== null) sub.lastWatermarkMs = lastWatermarkMs;
          if (billingGroup !== null) sub.billingGroup = Number(billingGroup);
          out.push(sub);
        }
      }
      return out;
    },

    writeBills: (bills) => writeBillsTx(pool, bills),

    async writeCursors(cursors) {
      if (cursors.length) await withTransaction(pool, (client) => moveCursors(client, cursors)).catch(mapPgError);
    },

    async repairUnsettled(runId) {
      // A partial index finds the unsettled runs (none, but after a crash or a failure); only then are
      // their bills read (by a scan of bills: they have no index by run, which would cost every insert).
      const { rows } = await pool.query<{ id: string }>(`SELECT id FROM billing_runs WHERE NOT settled AND id <> $1`, [runId]).catch(mapPgError);
      if (!rows.length) return 0;
      const ids = rows.map((r) => r.id);
      return withTransaction(pool, async (client) => {
        // Each following subscriber these runs billed goes past its latest bill of theirs, with that
        // bill's watermark, unless its group is past it already.
        const r = await client.query(`UPDATE billing_cursors c
             SET follows = false, next_period_index = l.period_index + 1, next_period_end = l.next_period_end, last_watermark = l.watermark
            FROM (SELECT DISTINCT ON (subscriber_id) subscriber_id, period_index, next_period_end, watermark
                    FROM bills WHERE run_id = ANY($1::uuid[]) ORDER BY subscriber_id, period_index DESC) l,
                 billing_groups g
           WHERE c.subscriber_id = l.subscriber_id AND c.follows AND g.id = c.group_id AND g.next_period_index <= l.period_index`, [ids]);
        await client.query(`UPDATE billing_runs SET settled = true WHERE id = ANY($1::uuid[])`, [ids]);
        return r.rowCount ?? 0;
      }).catch(mapPgError);
    },

    async settleRun(runId, s) {
      await withTransaction(pool, async (client) => {
        if (s.pins.length) await client.query(`SELECT billing_cursors_pin($1::uuid[])`, [s.pins]);
        await moveCursors(client, s.cursors);
        if (s.groups.length) {
          // Forward only; a null watermark keeps the group's (a group placed, nothing billed).
          await client.query(`UPDATE billing_groups g
               SET next_period_index = m.idx, next_period_end = m.next_end, last_watermark = COALESCE(m.watermark, g.last_watermark)
              FROM unnest($1::bigint[], $2::int4[], $3::timestamptz[], $4::timestamptz[]) AS m(id, idx, next_end, watermark)
             WHERE g.id = m.id AND g.next_period_index <= m.idx`,
          [s.groups.map((m) => m.groupId), s.groups.map((m) => m.nextPeriodIndex), s.groups.map((m) => new Date(m.nextPeriodEndMs)),
            s.groups.map((m) => (m.lastWatermarkMs === null ? null : new Date(m.lastWatermarkMs)))]);
          // Cursors of their own now where their group is, with its watermark (billed by this run
          // alongside it, e.g. a subscriber pinned after an unfinished run, or created once its group
          // had billed), follow it again.
          await client.query(`SELECT billing_groups_rejoin($1::bigint[])`, [s.groups.map((m) => m.groupId)]);
        }
        await client.query(`UPDATE billing_runs SET settled = true WHERE id = $1`, [runId]);
      }).catch(mapPgError);
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
