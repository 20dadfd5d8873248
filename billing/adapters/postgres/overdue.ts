/**
 * Overdue state from the system of record, set-based: one evaluation is a
 * handful of statements whatever the number of subscribers, reading only
 * unsettled bills (the partial index bills_unsettled_due) and overpaid ones
 * (bills_credit), never the whole bill history.
 *
 * Lock order: every writer of bills locks a subscriber's bills in
 * (subscriber_id, period_index) order (payments lock one subscriber's in
 * period order), so evaluations and payments never deadlock each other; a
 * deadlock or serialization failure from elsewhere is retried.
 */
import type { Pool, PoolClient } from '../../../core/postgres/index.ts';
import { mapPgError } from './errors.ts';

const RETRYABLE = new Set(['40P01', '40001']);

/** Runs fn again (up to 3 times in all) when PostgreSQL aborted it for a deadlock or a serialization failure. */
export async function withRetry<T>(fn: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= attempts || !RETRYABLE.has((e as { code?: string })?.code ?? '')) throw e;
    }
  }
}

export interface OverdueEvaluation {
  /** The instant statuses were evaluated at: max(asked, the latest earlier evaluation). */
  asOfMs: number;
  /** Numbers of the subscribers who are blocked (not closed), sorted. */
  blocked: string[];
  /** Credit moves from overpaid bills to later bills that owe. */
  creditMoves: number;
  /** Bills whose status changed. */
  statusChanges: number;
}

export interface SubscriberAdmissionState {
  phoneNumber: string;
  /** False for a closed subscriber (not published as a subscriber). */
  active: boolean;
  blocked: boolean;
}

// Moves the credit of overpaid bills to the same subscriber's later bills that
// still owe, oldest first, for every subscriber with such a pair. Credit and
// debts are laid end to end per subscriber (running sums) and matched where
// the intervals overlap; a move only ever goes forward (d after s). Rows are
// locked first, in the global lock order, and every value comes from the
// locked rows.
const CARRY_CREDIT = `
WITH locked AS (
  SELECT b.id, b.subscriber_id, b.period_index, b.total_cents, b.paid_cents
    FROM bills b
   WHERE b.subscriber_id IN (
         SELECT c.subscriber_id FROM bills c
          WHERE c.paid_cents > c.total_cents
            AND EXISTS (SELECT 1 FROM bills d WHERE d.subscriber_id = c.subscriber_id
                           AND d.period_index > c.period_index AND d.paid_cents < d.total_cents))
   ORDER BY b.subscriber_id, b.period_index
     FOR UPDATE
),
src AS (
  SELECT id, subscriber_id, period_index, paid_cents - total_cents AS amt,
         sum(paid_cents - total_cents) OVER (PARTITION BY subscriber_id ORDER BY period_index) AS hi
    FROM locked WHERE paid_cents > total_cents
),
first_src AS (SELECT subscriber_id, min(period_index) AS p FROM src GROUP BY subscriber_id),
dst AS (
  SELECT l.id, l.subscriber_id, l.period_index, l.total_cents - l.paid_cents AS amt,
         sum(l.total_cents - l.paid_cents) OVER (PARTITION BY l.subscriber_id ORDER BY l.period_index) AS hi
    FROM locked l JOIN first_src f ON f.subscriber_id = l.subscriber_id
   WHERE l.paid_cents < l.total_cents AND l.period_index > f.p
),
moves AS (
  SELECT s.subscriber_id, s.id AS from_id, d.id AS to_id,
         (LEAST(s.hi, d.hi) - GREATEST(s.hi - s.amt, d.hi - d.amt))::bigint AS amt
    FROM src s JOIN dst d ON d.subscriber_id = s.subscriber_id AND d.period_index > s.period_index
   WHERE LEAST(s.hi, d.hi) > GREATEST(s.hi - s.amt, d.hi - d.amt)
),
logged AS (
  INSERT INTO credit_transfers (subscriber_id, from_bill_id, to_bill_id, amount_cents)
  SELECT subscriber_id, from_id, to_id, amt FROM moves
),
deltas AS (
  SELECT from_id AS id, -sum(amt)::bigint AS d FROM moves GROUP BY from_id
  UNION ALL
  SELECT to_id, sum(amt)::bigint FROM moves GROUP BY to_id
),
moved AS (
  UPDATE bills b SET paid_cents = b.paid_cents + x.d FROM deltas x WHERE b.id = x.id RETURNING b.id
)
SELECT (SELECT count(*) FROM moves)::int AS moves`;

const STATUS = `CASE WHEN paid_cents >= total_cents THEN 'paid' WHEN due_at < $1 THEN 'overdue' ELSE 'open' END`;

// Only unsettled bills can change status: a paid bill keeps at least its total
// (credit moves out only its excess).
const UPDATE_STATUSES = `
UPDATE bills b SET status = x.status
  FROM (SELECT id, ${STATUS} AS status FROM bills
         WHERE status <> 'paid' AND status <> ${STATUS}
         ORDER BY subscriber_id, period_index
           FOR UPDATE) x
 WHERE b.id = x.id`;

const BLOCKED = `
SELECT DISTINCT s.phone_number
  FROM bills b JOIN subscribers s ON s.id = b.subscriber_id
 WHERE b.status <> 'paid' AND b.due_at < $1 AND s.status <> 'closed'
   AND b.total_cents - b.paid_cents > 0
   AND b.total_cents - bill_premium_cents(b.lines) - b.paid_cents > 0
 ORDER BY 1`;

async function evaluateIn(client: PoolClient, askedMs: number): Promise<OverdueEvaluation> {
  const clock = await client.query<{ as_of: Date }>(
    `UPDATE overdue_clock SET as_of = GREATEST(as_of, $1) RETURNING as_of`, [new Date(askedMs)]);
  const asOf = clock.rows[0]!.as_of;
  const carried = await client.query<{ moves: number }>(CARRY_CREDIT);
  const statuses = await client.query(UPDATE_STATUSES, [asOf]);
  const blocked = await client.query<{ phone_number: string }>(BLOCKED, [asOf]);
  return {
    asOfMs: asOf.getTime(),
    blocked: blocked.rows.map((r) => r.phone_number),
    creditMoves: carried.rows[0]!.moves,
    statusChanges: statuses.rowCount ?? 0,
  };
}

export interface OverdueRepository {
  /** Carries credit, recomputes statuses as of max(asOf, latest) and returns who is blocked, in one transaction. */
  evaluate(asOfMs: number): Promise<OverdueEvaluation>;
  /** One subscriber's admission state as of max(now, latest evaluation); undefined when unknown. */
  subscriberState(subscriberId: string, nowMs: number): Promise<SubscriberAdmissionState | undefined>;
  /** Blocked numbers as of max(now, latest evaluation), without writing anything. */
  blockedNumbers(nowMs: number): Promise<string[]>;
  /** Numbers of subscribers not closed, in number order, after `after` (keyset pages). */
  subscriberNumbers(after: string | null, limit: number): Promise<string[]>;
  /** Numbers of subscribers created after `since` (PostgreSQL's clock), and the latest creation time seen. */
  createdSince(since: Date | null): Promise<{ numbers: string[]; latest: Date | null }>;
  /** The newest subscriber's creation time. */
  latestCreatedAt(): Promise<Date | null>;
}

export function createOverdueRepository(pool: Pool): OverdueRepository {
  const latestAsOf = `GREATEST($1::timestamptz, (SELECT as_of FROM overdue_clock))`;
  return {
    evaluate: (asOfMs) => withRetry(async () => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const out = await evaluateIn(client, asOfMs);
        await client.query('COMMIT');
        return out;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => {});
        throw e;
      } finally {
        client.release();
      }
    }).catch(mapPgError),

    async subscriberState(subscriberId, nowMs) {
      const { rows } = await pool.query<{ phone_number: string; status: string; blocked: boolean }>(
        `SELECT s.phone_number, s.status, EXISTS (
                  SELECT 1 FROM bills b
                   WHERE b.subscriber_id = s.id AND b.status <> 'paid' AND b.due_at < ${latestAsOf}
                     AND b.total_cents - b.paid_cents > 0
                     AND b.total_cents - bill_premium_cents(b.lines) - b.paid_cents > 0) AS blocked
           FROM subscribers s WHERE s.id = $2`,
        [new Date(nowMs), subscriberId],
      ).catch(mapPgError);
      const r = rows[0];
      if (!r) return undefined;
      const active = r.status !== 'closed';
      return { phoneNumber: r.phone_number, active, blocked: active && r.blocked };
    },

    async blockedNumbers(nowMs) {
      const { rows } = await pool.query<{ phone_number: string }>(BLOCKED.replace(/\$1/g, latestAsOf), [new Date(nowMs)]).catch(mapPgError);
      return rows.map((r) => r.phone_number);
    },

    async subscriberNumbers(after, limit) {
      const { rows } = await pool.query<{ phone_number: string }>(
        `SELECT phone_number FROM subscribers
          WHERE status <> 'closed' AND ($1::text IS NULL OR phone_number > $1)
          ORDER BY phone_number LIMIT $2`,
        [after, limit],
      ).catch(mapPgError);
      return rows.map((r) => r.phone_number);
    },

    async createdSince(since) {
      const { rows } = await pool.query<{ phone_number: string; created_at: Date }>(
        `SELECT phone_number, created_at FROM subscribers
          WHERE status <> 'closed' AND ($1::timestamptz IS NULL OR created_at > $1)`,
        [since],
      ).catch(mapPgError);
      let latest = since;
      for (const r of rows) if (!latest || r.created_at > latest) latest = r.created_at;
      return { numbers: rows.map((r) => r.phone_number), latest };
    },

    async latestCreatedAt() {
      const { rows } = await pool.query<{ t: Date | null }>(`SELECT max(created_at) AS t FROM subscribers`).catch(mapPgError);
      return rows[0]?.t ?? null;
    },
  };
}
