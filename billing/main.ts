/**
 * Starts the billing side of a process on an existing ClickHouse handle:
 * PostgreSQL pool and migrations, the tariff, the billing run with its
 * schedule, and the HTTP API. With the embedded engine it must share the
 * ingest service's process (one process owns a chdb folder), so this is a
 * function that scripts/start.ts composes, not a process of its own.
 */
import type { ClickHouse } from '../core/clickhouse/client.ts';
import type { Clock } from '../core/clock.ts';
import type { Config } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import { createPool, type Pool } from '../core/postgres/index.ts';
import { loadTariff } from './domain/index.ts';
import { migrateBilling } from './adapters/postgres/index.ts';
import { startOverdue, type RunningOverdue } from './overdue/index.ts';
import { createBilling, type Billing } from './service.ts';
import { startBillingApi, type BillingApi } from './transport/http/index.ts';

export interface RunningBilling {
  billing: Billing;
  api: BillingApi;
  pool: Pool;
  /** Overdue state published to Redis for admission (sweep, watchdog, payment and subscriber hooks). */
  overdue: RunningOverdue['overdue'];
  stop(): Promise<void>;
}

export async function startBilling(opts: { config: Config; ch: ClickHouse; clock: Clock; log: Logger; port?: number; schedule?: boolean }): Promise<RunningBilling> {
  const { config, ch, clock } = opts;
  const log = opts.log.child({ component: 'billing' });
  const tariff = loadTariff();
  const pool = createPool(config.databaseUrl, { applicationName: 'phonebill-billing' });
  await migrateBilling(pool);
  // Redis trouble never fails a payment or a run: the watchdog republishes from PostgreSQL.
  const overdue = startOverdue({ pool, clock, log, config, sweep: opts.schedule !== false });
  const billing = createBilling({ pool, ch, clock, log, tariff, config, afterBills: (asOfMs) => overdue.overdue.evaluateAndPublish(asOfMs) });
  const api = await startBillingApi({
    pool, config, clock, log,
    runBilling: async ({ asOf }) => ({ ...(await billing.runBilling({ asOf })) }),
    listBillCalls: (bill, page) => billing.listBillCalls(bill, page),
    onSubscriberCreated: (s) => overdue.overdue.onSubscriberCreated(s),
    onPaymentRecorded: (r) => overdue.overdue.onPayment({ subscriberId: r.payment.subscriberId }),
    ...(opts.port !== undefined ? { port: opts.port } : {}),
  }).catch(async (e: unknown) => {
    // The Redis connection would keep the process alive after a failed start.
    await overdue.stop();
    throw e;
  });
  if (opts.schedule !== false) billing.startSchedule();
  return {
    billing, api, pool, overdue: overdue.overdue,
    async stop() {
      await api.close();
      await billing.close();
      await overdue.stop();
      await pool.end();
    },
  };
}
