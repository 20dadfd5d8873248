/**
 * `phonebill bill [--as-of INSTANT]`: one billing run, the same
 * runBilling({ asOf }) the schedule calls. Asks the running billing API first
 * (an embedded ClickHouse folder belongs to the process that opened it);
 * when none answers, runs in this process against the configured stores.
 */
import { parseArgs } from 'node:util';
import type { CliCommand } from '../command.ts';
import { createClickHouse } from '../../core/clickhouse/client.ts';
import { migrateClickHouse } from '../../core/clickhouse/migrate.ts';
import { systemClock } from '../../core/clock.ts';
import { ConfigError, loadDevConfig, type Config } from '../../core/config.ts';
import { createLogger } from '../../core/log.ts';
import { createPool } from '../../core/postgres/index.ts';
import { signDevToken } from '../../billing/auth/index.ts';
import { loadTariff } from '../../billing/domain/index.ts';
import { migrateBilling } from '../../billing/adapters/postgres/index.ts';
import { createBilling } from '../../billing/service.ts';
import { startOverdue } from '../../billing/overdue/index.ts';

const usage = `Usage: phonebill bill [--as-of INSTANT] [--token JWT]

Runs billing once: every subscriber period that ended at or before
INSTANT minus BILLING_GRACE_SECONDS and has no bill yet is billed (catch-up
included). INSTANT is RFC 3339 (2026-12-01T06:00:00Z); default: now.

The running billing API (BILLING_PORT) is asked first, with --token or a
development operator token; when nothing listens there, the run happens in
this process against ClickHouse (embedded folder or CLICKHOUSE_URL) and
PostgreSQL (DATABASE_URL). Prints the run's summary as JSON.`;

function isRefused(e: unknown): boolean {
  const c = (e as { cause?: { code?: string; errors?: { code?: string }[] } }).cause;
  return c?.code === 'ECONNREFUSED' || (c?.errors ?? []).some((x) => x.code === 'ECONNREFUSED');
}

async function viaApi(cfg: Config, asOf: string | undefined, token: string | undefined): Promise<{ status: number; body: string } | undefined> {
  const bearer = token ?? (cfg.jwtSecret
    ? await signDevToken({ secret: cfg.jwtSecret, issuer: cfg.jwtIssuer, audience: cfg.jwtAudience, role: 'operator', ttlSeconds: 300, now: Date.now() })
    : undefined);
  try {
    const res = await fetch(`http://${cfg.host}:${cfg.billingPort}/v1/billing-runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
      body: JSON.stringify(asOf ? { asOf } : {}),
      signal: AbortSignal.timeout(30 * 60_000),
    });
    return { status: res.status, body: await res.text() };
  } catch (e) {
    if (isRefused(e)) return undefined;
    throw e;
  }
}

async function inProcess(cfg: Config, asOf: string | undefined): Promise<unknown> {
  const log = createLogger({ level: cfg.logLevel === 'info' ? 'warn' : cfg.logLevel, name: 'bill' });
  const ch = createClickHouse({ url: cfg.clickhouseUrl, user: cfg.clickhouseUser, password: cfg.clickhousePassword, database: cfg.clickhouseDatabase, chdbPath: cfg.chdbPath });
  const pool = createPool(cfg.databaseUrl, { applicationName: 'phonebill-bill' });
  try {
    await migrateClickHouse(ch);
    await migrateBilling(pool);
    // As in the service: overdue evaluated as of the run and published to Redis (no sweep here).
    const overdue = startOverdue({ pool, clock: systemClock, log, config: cfg, sweep: false });
    try {
      const billing = createBilling({ pool, ch, clock: systemClock, log, tariff: loadTariff(), config: cfg, afterBills: (ms) => overdue.overdue.evaluateAndPublish(ms) });
      return await billing.runBilling(asOf ? { asOf } : {});
    } finally {
      await overdue.stop();
    }
  } finally {
    await pool.end();
    await ch.close();
  }
}

export const command: CliCommand = {
  summary: 'run billing once (as of now or --as-of INSTANT) and print the run summary',
  usage,
  async run(argv) {
    let values;
    try {
      ({ values } = parseArgs({ args: argv, options: { 'as-of': { type: 'string' }, token: { type: 'string' } } }));
    } catch (e) {
      console.error(`phonebill bill: ${(e as Error).message}\n\n${usage}`);
      return 2;
    }
    const asOf = values['as-of'];
    if (asOf !== undefined && !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(asOf)) {
      console.error(`phonebill bill: --as-of must be an RFC 3339 instant with offset (2026-12-01T06:00:00Z), got ${JSON.stringify(asOf)}`);
      return 2;
    }
    let cfg;
    try { cfg = loadDevConfig(); } catch (e) {
      if (e instanceof ConfigError) { console.error(`phonebill bill: ${e.message}`); return 2; }
      throw e;
    }
    const api = await viaApi(cfg, asOf, values.token);
    if (api) {
      if (api.status !== 200) { console.error(`phonebill bill: the billing API answered ${api.status}: ${api.body}`); return 1; }
      console.log(api.body);
      return 0;
    }
    try {
      console.log(JSON.stringify(await inProcess(cfg, asOf), null, 2));
      return 0;
    } catch (e) {
      const msg = (e as Error).message ?? String(e);
      if (/Cannot lock file|already running/i.test(msg)) {
        console.error(`phonebill bill: the embedded ClickHouse folder ${cfg.chdbPath} is held by another process whose billing API does not answer on port ${cfg.billingPort}`);
        return 1;
      }
      console.error(`phonebill bill: ${msg}`);
      return 1;
    }
  },
};
