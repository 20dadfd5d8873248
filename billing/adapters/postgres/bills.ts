/**
 * Read queries over bills for the API. Bills are written by the billing run;
 * nothing here changes one. A subscriber's bills are ordered by period index,
 * which is unique per subscriber and runs with period_start.
 */
import type { Pool } from '../../../core/postgres/index.ts';
import { mapPgError } from './errors.ts';

export type BillStatus = 'open' | 'paid' | 'overdue';

export interface Bill {
  id: string;
  subscriberId: string;
  periodIndex: number;
  periodStart: Date;
  periodEnd: Date;
  periodStartLocal: string;
  periodEndLocal: string;
  issuedAt: Date;
  dueAt: Date;
  currency: string;
  totalCents: number;
  paidCents: number;
  status: BillStatus;
  /** Calls ingested at or before this instant are on the bill. */
  watermark: Date;
  runId: string | null;
  createdAt: Date;
}

export interface BillLine {
  lineNo: number;
  kind: string;
  description: string;
  calls: number;
  billableSeconds: number;
  amountCents: number;
  usagePeriodStart: Date | null;
  usagePeriodEnd: Date | null;
}

/** A line as stored in bills.lines (written by the billing run). */
interface StoredLine {
  kind: string; description: string; calls: number; billableSeconds: number; amountCents: number;
  usagePeriodStart?: string; usagePeriodEnd?: string;
}

interface BillRow {
  id: string; subscriber_id: string; period_index: number; period_start: Date; period_end: Date;
  period_start_local: string; period_end_local: string; issued_at: Date; due_at: Date; currency: string;
  total_cents: number; paid_cents: number; status: BillStatus; watermark: Date; run_id: string | null; created_at: Date;
}

const BILL_COLUMNS = `id, subscriber_id, period_index, period_start, period_end, period_start_local, period_end_local,
  issued_at, due_at, currency, total_cents, paid_cents, status, watermark, run_id, created_at`;

const toBill = (r: BillRow): Bill => ({
  id: r.id, subscriberId: r.subscriber_id, periodIndex: r.period_index, periodStart: r.period_start, periodEnd: r.period_end,
  periodStartLocal: r.period_start_local, periodEndLocal: r.period_end_local, issuedAt: r.issued_at, dueAt: r.due_at,
  currency: r.currency, totalCents: r.total_cents, paidCents: r.paid_cents, status: r.status, watermark: r.watermark,
  runId: r.run_id, createdAt: r.created_at,
});

export interface BillRepository {
  /** The bill, or undefined; with subscriberId, only when it belongs to that subscriber. */
  get(id: string, subscriberId?: string): Promise<Bill | undefined>;
  lines(billId: string): Promise<BillLine[]>;
  /** Newest first; beforeIndex excludes that period index and every later one. */
  listForSubscriber(subscriberId: string, page: { limit: number; beforeIndex?: number }): Promise<Bill[]>;
}

export function createBillRepository(pool: Pool): BillRepository {
  return {
    async get(id, subscriberId) {
      const { rows } = await (subscriberId === undefined
        ? pool.query<BillRow>(`SELECT ${BILL_COLUMNS} FROM bills WHERE id = $1`, [id])
        : pool.query<BillRow>(`SELECT ${BILL_COLUMNS} FROM bills WHERE id = $1 AND subscriber_id = $2`, [id, subscriberId])
      ).catch(mapPgError);
      return rows[0] && toBill(rows[0]);
    },

    async lines(billId) {
      const { rows } = await pool.query<{ lines: StoredLine[] }>(`SELECT lines FROM bills WHERE id = $1`, [billId]).catch(mapPgError);
      return (rows[0]?.lines ?? []).map((l, i) => ({
        lineNo: i + 1, kind: l.kind, description: l.description, calls: l.calls, billableSeconds: l.billableSeconds,
        amountCents: l.amountCents,
        usagePeriodStart: l.usagePeriodStart ? new Date(l.usagePeriodStart) : null,
        usagePeriodEnd: l.usagePeriodEnd ? new Date(l.usagePeriodEnd) : null,
      }));
    },

    async listForSubscriber(subscriberId, { limit, beforeIndex }) {
      const { rows } = await pool.query<BillRow>(
        `SELECT ${BILL_COLUMNS} FROM bills
         WHERE subscriber_id = $1 AND ($2::int IS NULL OR period_index < $2)
         ORDER BY period_index DESC LIMIT $3`,
        [subscriberId, beforeIndex ?? null, limit],
      ).catch(mapPgError);
      return rows.map(toBill);
    },
  };
}
