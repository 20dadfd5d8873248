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
import { createBilling, type Billing } from './service.ts';
import { startBillingApi, type BillingApi } from './transport/http/index.ts';

export interface RunningBilling {
  billing: Billing;
  api: BillingApi;
  pool: Pool;
  stop(): Promise<void>;
}

export async function startBilling(opts: { config: Config; ch: ClickHouse; clock: Clock; log: Logger; port?: number; schedule?: boolean }): Promise<RunningBilling> {
  const { config, ch, clock } = opts;
  const log = opts.log.child({ component: 'billing' });
  const tariff = loadTariff();
  const pool = createPool(config.databaseUrl, { applicationName: 'phonebill-billing' });
  await migrateBilling(pool);
  const billing = createBilling({ pool, ch, clock, log, tariff, config });
  const api = await startBillingApi({
    pool, config, clock, log,
    runBilling: async ({ asOf }) => ({ ...(await billing.runBilling({ asOf })) }),
    listBillCalls: (bill, page) => billing.listBillCalls(bill, page),
    ...(opts.port !== undefined ? { port: opts.port } : {}),
  });
  if (opts.schedule !== false) billing.startSchedule();
  return {
    billing, api, pool,
    async stop() {
      await api.close();
      await billing.close();
      await pool.end();
    },
  };
}
