/**
 * The crash test's child process: one billing scenario, from a seed, into
 * its own embedded ClickHouse folder and its own PostgreSQL database, then
 * the scenario's billing runs in order, in chunks of 25 bills. Started again
 * on the same folder and database it finds the calls and subscribers already
 * there and reruns every run: runs already done bill nothing, the run that
 * was killed resumes.
 *
 *   node --import tsx billing/test/support/crash-child.ts SEED [--pause-ms N]
 *
 * Env (through core/config): PHONEBILL_DATA_DIR / CHDB_PATH (this process's
 * own chdb folder), DATABASE_URL (a private database), CLICKHOUSE_DATABASE.
 * stdout: the runner's pino lines ("billing progress" after each committed
 * chunk) and {"child": ...} lines for the child's own steps.
 * --pause-ms holds each chunk's write back that long, so that a parent on a
 * loaded machine can kill the run between its first and last chunk.
 */
import fc from 'fast-check';
import { loadConfig } from '../../../core/config.ts';
import { fixedClock } from '../../../core/clock.ts';
import { createLogger } from '../../../core/log.ts';
import { createClickHouse, queryRows } from '../../../core/clickhouse/client.ts';
import { migrateClickHouse } from '../../../core/clickhouse/migrate.ts';
import { createPool } from '../../../core/postgres/index.ts';
import { storeCalls } from '../../../test/calls.ts';
import { migrateBilling } from '../../adapters/postgres/migrate.ts';
import { createBillingRunStore, type BillingRunStore } from '../../adapters/postgres/billing-runs.ts';
import { createBillingRunner } from '../../run/run-billing.ts';
import { loadTariff } from '../../domain/index.ts';
import { CRASH_CHUNK_SIZE, CRASH_SCENARIO_SIZE, scenarioArb } from './scenario.ts';

const say = (child: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ child })}\n`);

async function main(argv: string[]): Promise<void> {
  const seed = Number(argv[0]);
  if (!Number.isSafeInteger(seed)) throw new Error(`usage: crash-child.ts SEED [--pause-ms N] (got seed ${JSON.stringify(argv[0])})`);
  const pauseAt = argv.indexOf('--pause-ms');
  const pauseMs = pauseAt >= 0 ? Number(argv[pauseAt + 1]) : 0;

  const config = loadConfig();
  const log = createLogger({ level: 'info', name: 'crash-child' });
  const ch = createClickHouse({ database: config.clickhouseDatabase, chdbPath: config.chdbPath });
  const pool = createPool(config.databaseUrl, { max: 3 });
  try {
    await migrateClickHouse(ch);
    await migrateBilling(pool);
    const [scenario] = fc.sample(scenarioArb(CRASH_SCENARIO_SIZE), { seed, numRuns: 1 });
    const s = scenario!;

    // First start: generate; later starts: find what the first stored (distinct calls: merges collapse resends).
    const distinct = new Set(s.calls.map((c) => c.callId)).size;
    const [{ n }] = await queryRows<{ n: string }>(ch, `SELECT uniqExact(call_id) AS n FROM ${ch.table('calls')}`);
    if (Number(n) === 0) await storeCalls(ch, s.calls);
    else if (Number(n) !== distinct) throw new Error(`folder holds ${n} calls, the scenario ${distinct}`);
    await pool.query(
      `INSERT INTO subscribers (phone_number, subscription_date, time_zone, plan)
       SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[]) ON CONFLICT (phone_number) DO NOTHING`,
      [s.subscribers.map((x) => x.phoneNumber), s.subscribers.map((x) => x.subscriptionDate), s.subscribers.map((x) => x.timeZone), s.subscribers.map((x) => x.plan ?? 'standard')],
    );
    say({ ready: true, subscribers: s.subscribers.length, callRows: s.calls.length, runs: s.runs.map((r) => new Date(r.asOfMs).toISOString()) });

    const real = createBillingRunStore(pool);
    const store: BillingRunStore = pauseMs > 0
      ? { ...real, writeBills: async (...a) => { await new Promise((r) => setTimeout(r, pauseMs)); return real.writeBills(...a); } }
      : real;
    for (const [i, run] of s.runs.entries()) {
      const runBilling = createBillingRunner({
        store, ch, clock: fixedClock(run.asOfMs), log, tariff: loadTariff(),
        config: { billingGraceSeconds: 3600, billingDueDays: 21, billingWatermarkLagSeconds: run.lagSeconds, billingChunkSize: CRASH_CHUNK_SIZE },
      });
      say({ run: i, asOf: new Date(run.asOfMs).toISOString() });
      const summary = await runBilling({ asOf: run.asOfMs });
      say({ run: i, periodsDue: summary.periodsDue, billsCreated: summary.billsCreated, skipped: summary.skipped.length });
    }
    say({ done: true });
  } finally {
    await Promise.allSettled([ch.close(), pool.end()]);
  }
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.exitCode = 1;
});
