/**
 * Direct SQL fixtures for billing tests: bills are written by the billing run
 * in production; these tests insert them by hand to exercise reads, the API
 * and the schema's guards.
 */
import type { Pool } from '../../core/postgres/index.ts';

export async function insertSubscriber(pool: Pool, s: { phoneNumber: string; subscriptionDate?: string; timeZone?: string; plan?: string }): Promise<string> {
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO subscribers (phone_number, subscription_date, time_zone, plan) VALUES ($1, $2, $3, $4) RETURNING id`,
    [s.phoneNumber, s.subscriptionDate ?? '2024-01-15', s.timeZone ?? 'America/New_York', s.plan ?? 'standard'],
  );
  return rows[0]!.id;
}

export interface BillFixture {
  subscriberId: string;
  periodIndex: number;
  periodStart: string;
  periodEnd: string;
  periodStartLocal: string;
  periodEndLocal: string;
  /**
   * The end of the period after this one (where the bill moves its subscriber's cursor): required
   * since migration 0033; left out, the column is not written (a schema before 0033).
   */
  nextPeriodEnd?: string;
  issuedAt: string;
  dueAt: string;
  totalCents?: number;
  paidCents?: number;
  status?: 'open' | 'paid' | 'overdue';
  watermark?: string;
  lines?: { kind: string; description: string; calls: number; billableSeconds: number; amountCents: number; usagePeriodStart?: string; usagePeriodEnd?: string }[];
}

export async function insertBill(pool: Pool, b: BillFixture): Promise<string> {
  const lines = b.lines ?? [{ kind: 'monthly_service', description: 'Monthly service', calls: 0, billableSeconds: 0, amountCents: 2000 }];
  const total = b.totalCents ?? lines.reduce((a, l) => a + l.amountCents, 0);
  const next = b.nextPeriodEnd === undefined ? ['', '', []] as const : [', next_period_end', ', $14', [b.nextPeriodEnd]] as const;
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO bills (subscriber_id, period_index, period_start, period_end, period_start_local, period_end_local,
       issued_at, due_at, currency, total_cents, paid_cents, status, watermark, lines${next[0]})
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'USD', $9, $10, $11, $12, $13${next[1]}) RETURNING id`,
    [b.subscriberId, b.periodIndex, b.periodStart, b.periodEnd, b.periodStartLocal, b.periodEndLocal,
      b.issuedAt, b.dueAt, total, b.paidCents ?? 0, b.status ?? 'open', b.watermark ?? b.issuedAt, JSON.stringify(lines), ...next[2]],
  );
  const id = rows[0]!.id;
  return id;
}

/** Monthly periods of a New York subscriber who subscribed on 2024-01-15 (EST/EDT offsets spelled out). */
export const NY_PERIODS = [
  { periodIndex: 0, periodStart: '2024-01-15T05:00:00Z', periodEnd: '2024-02-15T05:00:00Z', periodStartLocal: '2024-01-15', periodEndLocal: '2024-02-15', nextPeriodEnd: '2024-03-15T04:00:00Z', issuedAt: '2024-02-15T06:00:00Z', dueAt: '2024-03-07T06:00:00Z' },
  { periodIndex: 1, periodStart: '2024-02-15T05:00:00Z', periodEnd: '2024-03-15T04:00:00Z', periodStartLocal: '2024-02-15', periodEndLocal: '2024-03-15', nextPeriodEnd: '2024-04-15T04:00:00Z', issuedAt: '2024-03-15T05:00:00Z', dueAt: '2024-04-05T05:00:00Z' },
  { periodIndex: 2, periodStart: '2024-03-15T04:00:00Z', periodEnd: '2024-04-15T04:00:00Z', periodStartLocal: '2024-03-15', periodEndLocal: '2024-04-15', nextPeriodEnd: '2024-05-15T04:00:00Z', issuedAt: '2024-04-15T05:00:00Z', dueAt: '2024-05-06T05:00:00Z' },
] as const;
