/**
 * Test plumbing for the billing run: a private PostgreSQL and ClickHouse
 * database, a fixed clock, a runner over them, and the stored bills read
 * back in a comparable shape (no ids, no creation times).
 */
import { fixedClock } from '../../../core/clock.ts';
import { silentLogger } from '../../../core/log.ts';
import type { ClickHouse } from '../../../core/clickhouse/client.ts';
import type { Pool } from '../../../core/postgres/index.ts';
import { freshClickHouse } from '../../../test/helpers.ts';
import { freshPostgres, type FreshPostgres } from '../../../test/pg.ts';
import { createBillingRunStore, type BillingRunStore, type BillLineDoc } from '../../adapters/postgres/billing-runs.ts';
import { createBillingRunner, type BillingRunConfig, type RunBilling } from '../../run/run-billing.ts';
import { loadTariff, type ExpectedBill, type Tariff } from '../../domain/index.ts';

export const tariff: Tariff = loadTariff();

/** Grace 1 h as in production; no watermark lag so a test's ingest instants decide exactly. */
export const TEST_CONFIG: BillingRunConfig = { billingGraceSeconds: 3600, billingDueDays: 21, billingWatermarkLagSeconds: 0, billingChunkSize: 1000 };

export type TestClock = ReturnType<typeof fixedClock>;

export interface Harness {
  db: FreshPostgres;
  ch: ClickHouse;
  clock: TestClock;
  store: BillingRunStore;
  runBilling: RunBilling;
  /** Another runner over the same databases (its own store, pool or config). */
  runner(over?: { store?: BillingRunStore; config?: Partial<BillingRunConfig> }): RunBilling;
  close(): Promise<void>;
}

export async function billingHarness(opts: { now: string | number; config?: Partial<BillingRunConfig> }): Promise<Harness> {
  const [db, ch] = await Promise.all([freshPostgres({ prefix: 'run' }), freshClickHouse('run')]);
  const clock = fixedClock(opts.now);
  const store = createBillingRunStore(db.pool);
  const runner: Harness['runner'] = (over = {}) => createBillingRunner({
    store: over.store ?? store, ch, clock, log: silentLogger(), tariff, config: { ...TEST_CONFIG, ...opts.config, ...over.config },
  });
  return {
    db, ch, clock, store, runner, runBilling: runner(),
    close: async () => { await Promise.all([db.close(), ch.close()]); },
  };
}

export interface NewSubscriber { phoneNumber: string; subscriptionDate: string; timeZone: string; plan?: string }

export async function addSubscribers(pool: Pool, subs: readonly NewSubscriber[]): Promise<string[]> {
  if (!subs.length) return [];
  const { rows } = await pool.query<{ id: string; phone_number: string }>(
    `INSERT INTO subscribers (phone_number, subscription_date, time_zone, plan)
     SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[]) RETURNING id, phone_number`,
    [subs.map((s) => s.phoneNumber), subs.map((s) => s.subscriptionDate), subs.map((s) => s.timeZone), subs.map((s) => s.plan ?? 'standard')],
  );
  const byPhone = new Map(rows.map((r) => [r.phone_number, r.id]));
  return subs.map((s) => byPhone.get(s.phoneNumber)!);
}

/** A stored bill without its generated id, run id and creation time. */
export interface StoredBill {
  phoneNumber: string;
  periodIndex: number;
  periodStart: string;
  periodEnd: string;
  periodStartLocal: string;
  periodEndLocal: string;
  issuedAt: string;
  dueAt: string;
  currency: string;
  totalCents: number;
  status: string;
  watermark: string;
  lines: BillLineDoc[];
}

/** Every bill, ordered by subscriber phone number then period. */
export async function readBills(pool: Pool, phoneNumber?: string): Promise<StoredBill[]> {
  const { rows } = await pool.query(
    `SELECT s.phone_number, b.period_index, b.period_start, b.period_end, b.period_start_local, b.period_end_local,
            b.issued_at, b.due_at, b.currency, b.total_cents, b.status, b.watermark, b.lines
       FROM bills b JOIN subscribers s ON s.id = b.subscriber_id
      WHERE $1::text IS NULL OR s.phone_number = $1
      ORDER BY s.phone_number, b.period_index`,
    [phoneNumber ?? null],
  );
  return rows.map((r) => ({
    phoneNumber: r.phone_number, periodIndex: r.period_index,
    periodStart: r.period_start.toISOString(), periodEnd: r.period_end.toISOString(),
    periodStartLocal: r.period_start_local, periodEndLocal: r.period_end_local,
    issuedAt: r.issued_at.toISOString(), dueAt: r.due_at.toISOString(), currency: r.currency,
    totalCents: r.total_cents, status: r.status, watermark: r.watermark.toISOString(), lines: r.lines,
  }));
}

/** A reference bill in the stored shape, for a to-the-cent comparison. */
export function asStored(phoneNumber: string, e: ExpectedBill): Omit<StoredBill, 'issuedAt' | 'dueAt' | 'status'> {
  return {
    phoneNumber, periodIndex: e.period.index,
    periodStart: new Date(e.period.startMs).toISOString(), periodEnd: new Date(e.period.endMs).toISOString(),
    periodStartLocal: e.period.startLocal, periodEndLocal: e.period.endLocal,
    currency: e.currency, totalCents: e.totalCents, watermark: new Date(e.watermarkMs).toISOString(),
    lines: e.lines.map((l) => ({
      kind: l.kind, description: l.description, calls: l.calls, billableSeconds: l.billableSeconds, amountCents: l.amountCents,
      ...(l.lateFor ? { usagePeriodStart: new Date(l.lateFor.startMs).toISOString(), usagePeriodEnd: new Date(l.lateFor.endMs).toISOString() } : {}),
      ...(l.premiumCents !== undefined ? { premiumCents: l.premiumCents } : {}),
    })),
  };
}
