/**
 * Overdue state from the system of record, set-based: one evaluation is a
 * handful of statements whatever the number of subscribers, reading only
 * unsettled bills (the partial index bills_unsettled_due) and overpaid ones
 * (bills_credit), never the whole bill history.
 *
 * Locks: moving credit locks the subscribers' bills in (subscriber_id,
 * period_index) order, as a payment locks its subscriber's bills in period
 * order, so the two never deadlock; status updates skip rows a payment holds
 * (the payment sets those itself) and never wait. A deadlock or serialization
 * failure from elsewhere is retried.
 */
import { withTransaction, type Pool, type PoolClient } from '../../../core/postgres/index.ts';
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

// Subscribers with an overpaid bill (few: the partial index bills_credit).
const OVERPAID = `SELECT DISTINCT subscriber_id FROM bills WHERE paid_cents > total_cents`;

// Of those, the ones with a later bill that still owes. Asked with their ids as
// a parameter: the planner cannot estimate "paid_cents > total_cents" and, with
// the subquery inline, hashes every owing bill to find none.
const CREDIT_HOLDERS = `
SELECT DISTINCT c.subscriber_id
  FROM bills c
 WHERE c.subscriber_id = ANY($1::uuid[]) AND c.paid_cents > c.total_cents
   AND EXISTS (SELECT 1 FROM bills d WHERE d.subscriber_id = c.subscriber_id
                  AND d.period_index > c.period_index AND d.paid_cents < d.total_cents)`;

// Moves those subscribers' credit to their later bills that still owe, oldest
// first. Credit and debts are laid end to end per subscriber (running sums)
// and matched where the intervals overlap; a move only ever goes forward (d
// after s). Rows are locked first, in the global lock order, and every value
// comes from the locked rows.
const CARRY_CREDIT = `
WITH locked AS (
  SELECT b.id, b.subscriber_id, b.period_index, b.total_cents, b.paid_cents
    FROM bills b
   WHERE b.subscriber_id = ANY($1::uuid[])
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

// Only unsettled bills can change status (a paid bill keeps at least its total:
// credit moves out only its excess), and the evaluation instant never moves
// back, so an overdue bill stays overdue until paid. The ids come back and are updated by primary key in
// chunks, each its own short transaction: a month's cohort turning overdue is
// hundreds of thousands of rows, and one transaction would hold their locks
// (and stall payments) for its whole length. SKIP LOCKED: a bill a payment
// holds is left to that payment, which sets its status itself.
// Past due: a range of bills_unsettled_due. Not yet due: only settled ones can
// change (to paid), through bills_settled_unmarked; the month of bills not yet
// due is never read.
const STATUS_CANDIDATES = `
SELECT id FROM bills WHERE status <> 'paid' AND due_at < $1 AND status <> ${STATUS}
UNION ALL
SELECT id FROM bills WHERE status <> 'paid' AND paid_cents >= total_cents AND due_at >= $1`;

const UPDATE_STATUSES = `
WITH x AS (SELECT id FROM bills
            WHERE id = ANY($2::uuid[]) AND status <> 'paid' AND status <> ${STATUS}
              FOR UPDATE SKIP LOCKED)
UPDATE bills SET status = ${STATUS} WHERE id = ANY(ARRAY(SELECT id FROM x))`;

const STATUS_CHUNK = 5000;

const BLOCKED = `
SELECT DISTINCT s.phone_number
  FROM bills b JOIN subscribers s ON s.id = b.subscriber_id
 WHERE b.status <> 'paid' AND b.due_at < $1 AND s.status <> 'closed'
   AND b.total_cents - b.paid_cents > 0
   AND b.total_cents - bill_premium_cents(b.lines) - b.paid_cents > 0
 ORDER BY 1`;

/** fn inside BEGIN … COMMIT with JIT off: these are small index-driven statements, and JIT compilation costs seconds for nothing. */
function tx<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  return withTransaction(pool, async (client) => {
    await client.query('SET LOCAL jit = off');
    return fn(client);
  });
}

async function evaluate(pool: Pool, askedMs: number): Promise<OverdueEvaluation> {
  const { asOf, creditMoves, candidates } = await withRetry(() => tx(pool, async (c) => {
    const clock = await c.query<{ as_of: Date }>(`UPDATE overdue_clock SET as_of = GREATEST(as_of, $1) RETURNING as_of`, [new Date(askedMs)]);
    const at = clock.rows[0]!.as_of;
    const overpaid = await c.query<{ subscriber_id: string }>(OVERPAID);
    const holders = overpaid.rows.length
      ? await c.query<{ subscriber_id: string }>(CREDIT_HOLDERS, [overpaid.rows.map((r) => r.subscriber_id)])
      : { rows: [] };
    let moves = 0;
    if (holders.rows.length) moves = (await c.query<{ moves: number }>(CARRY_CREDIT, [holders.rows.map((r) => r.subscriber_id)])).rows[0]!.moves;
    const ids = await c.query<{ id: string }>(STATUS_CANDIDATES, [at]);
    return { asOf: at, creditMoves: moves, candidates: ids.rows.map((r) => r.id) };
  }));
  let statusChanges = 0;
  for (let i = 0; i < candidates.length; i += STATUS_CHUNK) {
    const chunk = candidates.slice(i, i + STATUS_CHUNK);
    statusChanges += await tx(pool, async (c) => (await c.query(UPDATE_STATUSES, [asOf, chunk])).rowCount ?? 0);
  }
  const blocked = await tx(pool, (c) => c.query<{ phone_number: string }>(BLOCKED, [asOf]));
  return { asOfMs: asOf.getTime(), blocked: blocked.rows.map((r) => r.phone_number), creditMoves, statusChanges };
}

export interface OverdueRepository {
  /** Carries credit, recomputes statuses as of max(asOf, latest) and returns who is blocked. */
  evaluate(asOfMs: number): Promise<OverdueEvaluation>;
  /** One subscriber's admission state as of max(now, latest evaluation); undefined when unknown. */
  subscriberState(subscriberId: string, nowMs: number): Promise<SubscriberAdmissionState | undefined>;
  /** Numbers of subscribers not closed, in number order, after `after` (keyset pages). */
  subscriberNumbers(after: string | null, limit: number): Promise<string[]>;
  /** Subscribers (not closed) created after `since`, by PostgreSQL's clock; all of them for null. */
  createdSince(since: Date | null): Promise<{ phoneNumber: string; createdAt: Date }[]>;
  /** PostgreSQL's clock (created_at is on it). */
  dbNow(): Promise<Date>;
}

export function createOverdueRepository(pool: Pool): OverdueRepository {
  const latestAsOf = `GREATEST($1::timestamptz, (SELECT as_of FROM overdue_clock))`;
  return {
    evaluate: (asOfMs) => evaluate(pool, asOfMs).catch(mapPgError),

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
      return rows.map((r) => ({ phoneNumber: r.phone_number, createdAt: r.created_at }));
    },

    async dbNow() {
      const { rows } = await pool.query<{ now: Date }>(`SELECT now() AS now`).catch(mapPgError);
      return rows[0]!.now;
    },
  };
}
