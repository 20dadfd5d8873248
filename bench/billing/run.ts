/**
 * `npm run bench -- billing [--quick]`: how long does billing take for a
 * realistic base, and how does that compare with the bare minimum the same
 * data needs (one plain aggregation query in ClickHouse plus one plain COPY
 * of the bill rows into PostgreSQL)? See README.md here.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createClickHouse, queryRows, type ClickHouse } from '../../core/clickhouse/client.ts';
import { migrateClickHouse } from '../../core/clickhouse/migrate.ts';
import { fixedClock } from '../../core/clock.ts';
import { createLogger } from '../../core/log.ts';
import { copyIn, createPool, type Pool } from '../../core/postgres/index.ts';
import { loadTariff } from '../../billing/domain/index.ts';
import { migrateBilling } from '../../billing/adapters/postgres/index.ts';
import { createBilling } from '../../billing/service.ts';
import { median } from '../stats.ts';

const log = (s: string) => process.stderr.write(`${s}\n`);
const ADMIN_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/phonebill';

// Anniversary days 1..31: subscription dates 2026-10-01 .. 2026-10-31, so every
// subscriber's first period (Oct D → Nov D, clamped) is billed in November.
const ZONES = ['America/New_York', 'America/Chicago', 'America/Denver', 'America/Phoenix', 'America/Los_Angeles', 'America/Toronto', 'America/Vancouver', 'America/Halifax', 'America/St_Johns', 'Pacific/Honolulu', 'America/Anchorage', 'America/Regina'];
const CLASSES_TARGETS = ['+13125550143', '+13125550143', '+13125550143', '+14165550100', '+18765550100', '+18005550100', '+19005550100', '911'];

async function makeDb(name: string): Promise<{ pool: Pool; url: string; drop(): Promise<void> }> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const u = new URL(ADMIN_URL); u.pathname = `/${name}`;
  const pool = createPool(u.toString(), { max: 4 });
  await migrateBilling(pool);
  return {
    pool, url: u.toString(),
    drop: async () => {
      await pool.end();
      const a = new pg.Client({ connectionString: ADMIN_URL }); await a.connect();
      await a.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`); await a.end();
    },
  };
}

const phoneOf = (i: number) => `+1${212 + (i % 600 >= 300 ? 100 : 0)}${String(2000000 + i).padStart(7, '0')}`;

async function loadSubscribers(pool: Pool, n: number): Promise<void> {
  const client = await pool.connect();
  try {
    await copyIn(client, 'COPY subscribers (phone_number, subscription_date, time_zone, plan) FROM STDIN', range(n),
      (i) => `${phoneOf(i)}\t2026-10-${String((i % 31) + 1).padStart(2, '0')}\t${ZONES[i % ZONES.length]}\t${i % 10 === 0 ? 'saver' : 'standard'}\n`);
  } finally { client.release(); }
}

function* range(n: number): Generator<number> { for (let i = 0; i < n; i++) yield i; }

/** Calls generated inside the engine: each subscriber's inside its first period, ~perSub each. */
export async function loadCalls(ch: ClickHouse, subs: number, perSub: number): Promise<void> {
  const total = subs * perSub;
  const step = 5_000_000;
  for (let from = 0; from < total; from += step) {
    const count = Math.min(step, total - from);
    // Subscriber s = number % subs has anniversary day (s % 31) + 1; its period starts at that
    // October day's local midnight (UTC-10 .. UTC-3:30): starts are kept 12 h inside both ends.
    await ch.client.command({
      query: `INSERT INTO ${ch.table('calls')} (call_id, source_number, target_number, started_at, ended_at, duration_ms, source_country, target_country, call_class, ingested_at)
        SELECT concat('bench-', toString(n)) AS call_id,
               concat('+1', toString(212 + if((n % {subs:UInt64}) % 600 >= 300, 100, 0)), leftPad(toString(2000000 + (n % {subs:UInt64})), 7, '0')) AS source_number,
               {targets:Array(String)}[1 + (intHash32(n) % length({targets:Array(String)}))] AS target_number,
               toDateTime64('2026-10-01 12:00:00', 3, 'UTC') + toIntervalDay((n % {subs:UInt64}) % 31) + toIntervalMillisecond(intHash64(n) % (29 * 86400000)) AS started_at,
               started_at + toIntervalMillisecond(duration_ms) AS ended_at,
               toUInt32(if(intHash32(n + 7) % 50 = 0, 0, intHash32(n + 3) % 900000)) AS duration_ms,
               'US' AS source_country,
               multiIf(target_number = '+14165550100', 'CA', target_number = '+18765550100', 'JM', target_number = '911', '', 'US') AS target_country,
               multiIf(target_number = '+14165550100', 'cross_border', target_number = '+18765550100', 'nanp_international', target_number = '+18005550100', 'toll_free',
                       target_number = '+19005550100', 'premium', target_number = '911', 'service_code', 'domestic') AS call_class,
               toDateTime64('2026-11-01 00:00:00', 3, 'UTC') AS ingested_at
        FROM (SELECT number + {from:UInt64} AS n FROM numbers({count:UInt64}))`,
      query_params: { subs, targets: CLASSES_TARGETS, from, count },
    });
    log(`  calls: ${Math.min(from + count, total).toLocaleString()} / ${total.toLocaleString()}`);
  }
}

async function baseline(ch: ClickHouse, pool: Pool, bills: number): Promise<{ queryMs: number; copyMs: number }> {
  let t = performance.now();
  const rs = await ch.client.query({
    query: `SELECT source_number, call_class, count() AS calls, sum(intDiv(duration_ms + 59999, 60000) * 60) AS secs
            FROM ${ch.table('calls')} WHERE started_at >= '2026-10-01 00:00:00' AND started_at < '2026-12-01 00:00:00'
            GROUP BY source_number, call_class`,
    format: 'TabSeparated',
  });
  const text = await rs.text();
  const queryMs = performance.now() - t;
  if (!text) throw new Error('baseline aggregation returned nothing');
  await pool.query(`CREATE TABLE bare_bills (id uuid, subscriber_id uuid, period_index integer, period_start timestamptz, period_end timestamptz,
    period_start_local date, period_end_local date, issued_at timestamptz, due_at timestamptz, currency text, total_cents bigint,
    watermark timestamptz, run_id uuid, lines json)`);
  const lines = JSON.stringify([{ kind: 'monthly_service', description: 'Monthly service', calls: 0, billableSeconds: 0, amountCents: 2000 },
    { kind: 'domestic', description: 'Domestic calls', calls: 60, billableSeconds: 18000, amountCents: 1500 },
    { kind: 'cross_border', description: 'Cross-border calls (US and Canada)', calls: 12, billableSeconds: 3600, amountCents: 600 },
    { kind: 'toll_free', description: 'Toll-free calls', calls: 12, billableSeconds: 3600, amountCents: 0 }]);
  t = performance.now();
  const client = await pool.connect();
  try {
    await copyIn(client, 'COPY bare_bills FROM STDIN', range(bills), (i) => {
      const id = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
      return `${id}\t${id}\t0\t2026-10-01T04:00:00Z\t2026-11-01T04:00:00Z\t2026-10-01\t2026-11-01\t2026-11-30T12:00:00Z\t2026-12-21T12:00:00Z\tUSD\t4100\t2026-11-30T11:59:00Z\t${id}\t${lines}\n`;
    });
  } finally { client.release(); }
  return { queryMs, copyMs: performance.now() - t };
}

interface Scenario { bills: number; ms: number; timings: Record<string, number> }
interface Repetition { cohort: Scenario; catchup: Scenario; base: { queryMs: number; copyMs: number } }
/** A repetition's baseline (bare query + bare COPY), and its catch-up over it. */
const baseMs = (r: Repetition) => r.base.queryMs + r.base.copyMs;
const ratioOf = (r: Repetition) => r.catchup.ms / baseMs(r);

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { quick: { type: 'boolean' }, subscribers: { type: 'string' }, 'calls-per-subscriber': { type: 'string' }, chunk: { type: 'string' }, repetitions: { type: 'string' } } });
  const repetitions = Math.max(1, Number(values.repetitions ?? (values.quick ? 1 : 3)));
  const subs = Number(values.subscribers ?? (values.quick ? 30_000 : 300_000));
  const perSub = Number(values['calls-per-subscriber'] ?? 100);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'phonebill-bench-billing-'));
  const ch = createClickHouse({ database: 'bench', chdbPath: path.join(dir, 'chdb') });
  const tag = `bench_billing_${process.pid}`;
  const logger = createLogger({ level: 'warn', name: 'bench' });
  const tariff = loadTariff();
  const config = { billingGraceSeconds: 3600, billingDueDays: 21, billingWatermarkLagSeconds: 60, billingChunkSize: Number(values.chunk ?? 100_000), billingSchedule: undefined };
  log(`billing bench: ${subs.toLocaleString()} subscribers, ${(subs * perSub).toLocaleString()} calls (data in ${dir})`);
  try {
    await migrateClickHouse(ch);
    let t = performance.now();
    await loadCalls(ch, subs, perSub);
    log(`  calls generated in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    // A month-old partition has been merged by the background merges by the time it is billed;
    // merge now so the figures are those of steady state, not of a table of fresh parts.
    t = performance.now();
    await ch.client.command({ query: `OPTIMIZE TABLE ${ch.table('calls')} FINAL` });
    log(`  parts merged in ${((performance.now() - t) / 1000).toFixed(1)} s (as background merges would have)`);
    const [{ c }] = await queryRows<{ c: string }>(ch, `SELECT count() AS c FROM ${ch.table('calls')}`) as [{ c: string }];

    // Each repetition: two PostgreSQL databases with the same subscribers, one for the day's cohort and
    // one for the catch-up, then the baseline right after the catch-up. This machine's speed drifts by
    // tens of percent within minutes, so the figures are medians over the repetitions, and the ratio
    // is the median of each repetition's catch-up over the baseline measured next to it.
    const reps: Repetition[] = [];
    for (let rep = 0; rep < repetitions; rep++) {
      const runs: Record<string, Scenario> = {};
      for (const scenario of ['cohort', 'catchup'] as const) {
        const db = await makeDb(`${tag}_${scenario}`);
        try {
          await loadSubscribers(db.pool, subs);
          await db.pool.query('ANALYZE');
          const billing = (asOf: string) => createBilling({ pool: db.pool, ch, clock: fixedClock(asOf), log: logger, tariff, config });
          // Steady state: a run before any period ends gives every subscriber its cursor.
          await billing('2026-10-31T00:00:00Z').runBilling();
          await db.pool.query('VACUUM ANALYZE billing_cursors');
          const asOf = scenario === 'cohort' ? '2026-11-01T12:00:00Z' : '2026-11-30T12:00:00Z';
          t = performance.now();
          const s = await billing(asOf).runBilling();
          runs[scenario] = { bills: s.billsCreated, ms: performance.now() - t, timings: s.timingsMs };
          log(`  ${rep + 1}/${repetitions} ${scenario}: ${s.billsCreated.toLocaleString()} bills in ${(runs[scenario]!.ms / 1000).toFixed(2)} s ${JSON.stringify(s.timingsMs)}`);
          if (scenario === 'catchup') {
            if (s.billsCreated !== subs) throw new Error(`catch-up billed ${s.billsCreated}, expected ${subs}`);
            const r = { cohort: runs.cohort!, catchup: runs.catchup!, base: await baseline(ch, db.pool, s.billsCreated) };
            reps.push(r);
            log(`  ${rep + 1}/${repetitions} baseline: ${(baseMs(r) / 1000).toFixed(2)} s (query ${(r.base.queryMs / 1000).toFixed(2)} + COPY ${(r.base.copyMs / 1000).toFixed(2)}); catch-up / baseline ${ratioOf(r).toFixed(2)}x`);
          }
        } finally {
          await db.drop().catch(() => {});
        }
      }
    }
    const catchup = { bills: subs, ms: median(reps.map((r) => r.catchup.ms)) };
    const cohort = { bills: reps[0]!.cohort.bills, ms: median(reps.map((r) => r.cohort.ms)) };
    const base = { queryMs: median(reps.map((r) => r.base.queryMs)), copyMs: median(reps.map((r) => r.base.copyMs)) };
    const baselineMs = median(reps.map(baseMs));
    const ratio = median(reps.map(ratioOf));
    const billsPerSecond = Math.round(catchup.bills / (catchup.ms / 1000));
    const baselinePerSecond = Math.round(catchup.bills / (baselineMs / 1000));
    const peakRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
    log('');
    log(`calls stored                        ${Number(c).toLocaleString()}`);
    log(`repetitions                         ${repetitions} (medians below)`);
    log(`one day's cohort                    ${cohort.bills.toLocaleString()} bills in ${(cohort.ms / 1000).toFixed(2)} s   (target < 1 s)`);
    log(`catch-up, all cohorts               ${catchup.bills.toLocaleString()} bills in ${(catchup.ms / 1000).toFixed(2)} s = ${billsPerSecond.toLocaleString()} bills/s`);
    log(`baseline: bare aggregation query    ${(base.queryMs / 1000).toFixed(2)} s`);
    log(`baseline: bare COPY of ${catchup.bills.toLocaleString()} rows  ${(base.copyMs / 1000).toFixed(2)} s`);
    log(`baseline total                      ${(baselineMs / 1000).toFixed(2)} s = ${baselinePerSecond.toLocaleString()} bills/s`);
    log(`catch-up / baseline                 ${ratio.toFixed(2)}x   (target < 2x; each repetition: ${reps.map((r) => ratioOf(r).toFixed(2)).join(', ')})`);
    log(`peak RSS (this process)             ${peakRssMiB} MiB`);
    console.log(JSON.stringify({
      bench: 'billing', unit: 'bills/s', value: billsPerSecond, baseline: baselinePerSecond,
      ratio: Number((billsPerSecond / baselinePerSecond).toFixed(3)), catchupSeconds: Number((catchup.ms / 1000).toFixed(3)),
      baselineSeconds: Number((baselineMs / 1000).toFixed(3)), timeVsBaseline: Number(ratio.toFixed(3)),
      cohortBills: cohort.bills, cohortSeconds: Number((cohort.ms / 1000).toFixed(3)), subscribers: subs, calls: Number(c),
      peakRssMiB, quick: Boolean(values.quick), repetitions,
      runs: reps.map((r) => ({ cohortSeconds: Number((r.cohort.ms / 1000).toFixed(3)), catchupSeconds: Number((r.catchup.ms / 1000).toFixed(3)), baselineSeconds: Number((baseMs(r) / 1000).toFixed(3)) })),
    }));
  } finally {
    await ch.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
