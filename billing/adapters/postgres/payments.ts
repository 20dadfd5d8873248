/**
 * Recording a payment: one transaction that locks the subscriber's bills (in
 * period order, the one lock order every writer of bills uses), inserts the
 * payment under its unique idempotency key, and writes the bills' new paid
 * amounts, statuses and credit moves (billing/payments/domain.ts).
 *
 * Idempotency: the key is looked up first (a replay takes no lock). Two
 * concurrent first requests with one key serialise on the bill locks or, for
 * different bills, on the key's unique index: the second INSERT … ON CONFLICT
 * DO NOTHING waits for the first to commit, inserts nothing, and the second
 * request answers as a replay (or 409 when its body differs).
 */
import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from '../../../core/postgres/index.ts';
import { DomainError, notFound } from '../../../core/errors.ts';
import { applyPayment, type LedgerBill } from '../../payments/domain.ts';
import { effectiveAsOf, type BillStatus } from '../../overdue/domain.ts';
import { mapPgError } from './errors.ts';
import { withRetry } from './overdue.ts';

export interface NewPayment { billId: string; amountCents: number; idempotencyKey: string }

export interface Payment {
  id: string;
  billId: string;
  subscriberId: string;
  amountCents: number;
  idempotencyKey: string;
  createdAt: Date;
}

export interface BillBalance { id: string; totalCents: number; paidCents: number; status: BillStatus }

export interface CreditTransfer { fromBillId: string; toBillId: string; amountCents: number; paymentId: string | null; createdAt: Date }

export interface RecordedPayment {
  payment: Payment;
  /** The paid bill as this payment left it (a replay answers the same). */
  bill: BillBalance;
  /** Credit this payment moved to later bills. */
  carried: { billId: string; amountCents: number }[];
  /** True when the key had been used with this same body: nothing new was recorded. */
  replayed: boolean;
}

export interface PaymentRepository {
  /** Throws not_found BILL_NOT_FOUND, conflict IDEMPOTENCY_KEY_REUSED (field idempotencyKey). */
  record(p: NewPayment, nowMs: number): Promise<RecordedPayment>;
  /** A bill's payments (oldest first) and the credit moved into or out of it; undefined for an unknown bill. */
  listForBill(billId: string): Promise<{ payments: Payment[]; credits: CreditTransfer[] } | undefined>;
}

interface PaymentRow {
  id: string; bill_id: string; subscriber_id: string; amount_cents: number; idempotency_key: string; created_at: Date;
  bill_paid_cents_after: number; bill_status_after: BillStatus; total_cents: number;
}

const toPayment = (r: PaymentRow): Payment => ({
  id: r.id, billId: r.bill_id, subscriberId: r.subscriber_id, amountCents: r.amount_cents, idempotencyKey: r.idempotency_key, createdAt: r.created_at,
});

const keyReused = () => new DomainError('conflict', 'IDEMPOTENCY_KEY_REUSED',
  'idempotencyKey: already used for a payment with a different billId or amountCents', { field: 'idempotencyKey' });

async function replay(q: Pool | PoolClient, p: NewPayment): Promise<RecordedPayment | undefined> {
  const { rows } = await q.query<PaymentRow>(
    `SELECT p.id, p.bill_id, p.subscriber_id, p.amount_cents, p.idempotency_key, p.created_at,
            p.bill_paid_cents_after, p.bill_status_after, b.total_cents
       FROM payments p JOIN bills b ON b.id = p.bill_id
      WHERE p.idempotency_key = $1`,
    [p.idempotencyKey],
  );
  const r = rows[0];
  if (!r) return undefined;
  if (r.bill_id !== p.billId || r.amount_cents !== p.amountCents) throw keyReused();
  const moved = await q.query<{ to_bill_id: string; amount_cents: number }>(
    `SELECT to_bill_id, amount_cents FROM credit_transfers WHERE payment_id = $1 ORDER BY id`, [r.id]);
  return {
    payment: toPayment(r),
    bill: { id: r.bill_id, totalCents: r.total_cents, paidCents: r.bill_paid_cents_after, status: r.bill_status_after },
    carried: moved.rows.map((m) => ({ billId: m.to_bill_id, amountCents: m.amount_cents })),
    replayed: true,
  };
}

export function createPaymentRepository(pool: Pool): PaymentRepository {
  async function recordOnce(p: NewPayment, nowMs: number): Promise<RecordedPayment> {
    const early = await replay(pool, p);
    if (early) return early;

    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const owner = await client.query<{ subscriber_id: string }>(`SELECT subscriber_id FROM bills WHERE id = $1`, [p.billId]);
      const subscriberId = owner.rows[0]?.subscriber_id;
      if (!subscriberId) throw notFound('bill', 'BILL_NOT_FOUND');
      const { rows } = await client.query<{
        id: string; period_index: number; total_cents: number; paid_cents: number; due_at: Date; status: BillStatus; as_of: Date | null;
      }>(
        `SELECT b.id, b.period_index, b.total_cents, b.paid_cents, b.due_at, b.status, c.as_of
           FROM bills b CROSS JOIN overdue_clock c
          WHERE b.subscriber_id = $1
          ORDER BY b.period_index
            FOR UPDATE OF b`,
        [subscriberId],
      );
      const asOfMs = effectiveAsOf(nowMs, rows[0]!.as_of?.getTime() ?? null);
      const bills: LedgerBill[] = rows.map((r) => ({
        id: r.id, periodIndex: r.period_index, totalCents: r.total_cents, paidCents: r.paid_cents, dueAtMs: r.due_at.getTime(), status: r.status,
      }));
      const effect = applyPayment(bills, p.billId, p.amountCents, asOfMs);

      const id = randomUUID();
      const ins = await client.query<{ created_at: Date }>(
        `INSERT INTO payments (id, bill_id, subscriber_id, amount_cents, idempotency_key, bill_paid_cents_after, bill_status_after)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (idempotency_key) DO NOTHING
         RETURNING created_at`,
        [id, p.billId, subscriberId, p.amountCents, p.idempotencyKey, effect.bill.paidCents, effect.bill.status],
      );
      if (ins.rowCount === 0) {
        // A concurrent request with this key committed first: answer as its replay
        // (on this same connection: waiting for another could exhaust the pool).
        await client.query('ROLLBACK');
        const again = await replay(client, p);
        if (!again) throw new Error(`payment with idempotency key vanished after a conflict`);
        return again;
      }
      if (effect.changed.length) {
        await client.query(
          `UPDATE bills b SET paid_cents = x.paid, status = x.status
             FROM unnest($1::uuid[], $2::bigint[], $3::text[]) AS x (id, paid, status)
            WHERE b.id = x.id`,
          [effect.changed.map((c) => c.id), effect.changed.map((c) => c.paidCents), effect.changed.map((c) => c.status)],
        );
      }
      if (effect.moves.length) {
        await client.query(
          `INSERT INTO credit_transfers (subscriber_id, from_bill_id, to_bill_id, amount_cents, payment_id)
           SELECT $1, f, t, a, $5 FROM unnest($2::uuid[], $3::uuid[], $4::bigint[]) AS x (f, t, a)`,
          [subscriberId, effect.moves.map((m) => m.fromBillId), effect.moves.map((m) => m.toBillId), effect.moves.map((m) => m.amountCents), id],
        );
      }
      await client.query('COMMIT');
      return {
        payment: { id, billId: p.billId, subscriberId, amountCents: p.amountCents, idempotencyKey: p.idempotencyKey, createdAt: ins.rows[0]!.created_at },
        bill: effect.bill,
        carried: effect.moves.map((m) => ({ billId: m.toBillId, amountCents: m.amountCents })),
        replayed: false,
      };
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      client.release();
    }
  }

  return {
    record: (p, nowMs) => withRetry(() => recordOnce(p, nowMs)).catch(mapPgError),

    async listForBill(billId) {
      const bill = await pool.query(`SELECT 1 FROM bills WHERE id = $1`, [billId]).catch(mapPgError);
      if (bill.rowCount === 0) return undefined;
      const [payments, credits] = await Promise.all([
        pool.query<PaymentRow>(
          `SELECT id, bill_id, subscriber_id, amount_cents, idempotency_key, created_at FROM payments
            WHERE bill_id = $1 ORDER BY created_at, id`, [billId]),
        pool.query<{ from_bill_id: string; to_bill_id: string; amount_cents: number; payment_id: string | null; created_at: Date }>(
          `SELECT from_bill_id, to_bill_id, amount_cents, payment_id, created_at FROM credit_transfers
            WHERE from_bill_id = $1 OR to_bill_id = $1 ORDER BY id`, [billId]),
      ]).catch(mapPgError);
      return {
        payments: payments.rows.map(toPayment),
        credits: credits.rows.map((c) => ({ fromBillId: c.from_bill_id, toBillId: c.to_bill_id, amountCents: c.amount_cents, paymentId: c.payment_id, createdAt: c.created_at })),
      };
    },
  };
}
