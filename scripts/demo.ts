/**
 * `npm run demo`: a month of a phone company's traffic, end to end, on a
 * fresh data folder (.data/demo, wiped each run so every run is the same):
 * start the services, generate ≥10,000 subscribers and about a million calls
 * for the last full month before "now", send them through gRPC
 * RecordCallBatches, and show what an analyst sees through /sql.
 *
 * The demo is a list of stages (functions of one shared context) so later
 * issues can add theirs (billing, admission, bill pages) in order.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { systemClock, toMillis } from '../core/clock.ts';
import { millisToTimestamp } from '../core/grpc/proto.ts';
import { connectIngest, sendStreams, type SendTotals, type WireEvent } from '../cli/lib/ingest-client.ts';
import { sqlViaService } from '../cli/lib/sql-client.ts';
import { fmtInt, formatTable } from '../cli/lib/table.ts';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';
import { loadConfig } from '../core/config.ts';
import { REPO_ROOT, startIngestChild, type IngestChild } from './lib/ingest-child.ts';
import { deleteKeysWithPrefix } from './lib/redis.ts';
import { billTheMonth, billingReports, createSubscribers } from './demo/billing-stages.ts';
import { overdueBlocksCalls, type AdmissionDemoContext } from './demo/admission-stages.ts';
import { createTraffic, lastFullMonth, type Traffic, type TrafficEvent } from './lib/traffic.ts';

/** What runs the services: the whole stack, as `npm start` runs it. */
const SERVICES_COMMAND: readonly string[] = [process.execPath, '--import', 'tsx', 'scripts/start.ts'];
/** The demo's own PostgreSQL database and Redis key prefix, made afresh each run like its data folder. */
const DEMO_DATABASE = 'phonebill_demo';
const DEMO_REDIS_PREFIX = 'pbdemo:';

interface Options { asOf: number; subscribers: number; calls: number; streams: number; seed: number; dataDir: string }

interface DemoContext extends AdmissionDemoContext {
  opts: Options;
  month: { from: number; to: number; label: string };
  service?: IngestChild;
  traffic?: Traffic;
  sent?: SendTotals & { seconds: number };
}

interface Stage { title: string; run(ctx: DemoContext): Promise<void> }

const EVENTS_PER_STREAM = 25_000;
const say = (s = '') => process.stdout.write(`${s}\n`);

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      'as-of': { type: 'string' },
      subscribers: { type: 'string', default: '10000' },
      calls: { type: 'string', default: '1000000' },
      streams: { type: 'string', default: '4' },
      seed: { type: 'string', default: '2026' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    say('Usage: npm run demo -- [--as-of 2026-11-15T12:00:00Z] [--subscribers 10000] [--calls 1000000] [--streams 4] [--seed 2026]');
    process.exit(0);
  }
  const int = (name: string, s: string, min: number) => {
    if (!/^\d+$/.test(s) || Number(s) < min) throw new Error(`--${name} must be an integer ≥ ${min}, got ${JSON.stringify(s)}`);
    return Number(s);
  };
  return {
    // The one reading of the clock: every stage works "as of" this instant.
    asOf: values['as-of'] ? toMillis(values['as-of']) : systemClock.now(),
    subscribers: int('subscribers', values.subscribers!, 1),
    calls: int('calls', values.calls!, 1),
    streams: int('streams', values.streams!, 1),
    seed: int('seed', values.seed!, 0),
    dataDir: path.join(REPO_ROOT, '.data', 'demo'),
  };
}

// ---------------------------------------------------------------- stages

const freshDataFolder: Stage = {
  title: 'A fresh data folder, database and key prefix',
  async run(ctx) {
    fs.rmSync(ctx.opts.dataDir, { recursive: true, force: true });
    fs.mkdirSync(ctx.opts.dataDir, { recursive: true });
    // The development token secret of this stack: npm start on this folder later finds the same one.
    const jwtSecret = randomBytes(32).toString('base64url');
    fs.writeFileSync(path.join(ctx.opts.dataDir, 'dev-jwt-secret'), `${jwtSecret}\n`, { mode: 0o600 });
    const cfg = loadConfig();
    const admin = new pg.Client({ connectionString: cfg.databaseUrl });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${DEMO_DATABASE} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${DEMO_DATABASE}`);
    } finally { await admin.end(); }
    const u = new URL(cfg.databaseUrl);
    u.pathname = `/${DEMO_DATABASE}`;
    const redis = new Redis(cfg.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
    await redis.connect();
    try {
      await deleteKeysWithPrefix(redis, DEMO_REDIS_PREFIX);
    } finally { redis.disconnect(); }
    ctx.stack = { billingUrl: '', jwtSecret, databaseUrl: u.toString() };
    say(`${path.relative(REPO_ROOT, ctx.opts.dataDir)}, PostgreSQL database ${DEMO_DATABASE}, Redis keys ${DEMO_REDIS_PREFIX}* (all wiped: every run starts from nothing and gives the same figures)`);
  },
};

const startServices: Stage = {
  title: 'Start the services (npm start)',
  async run(ctx) {
    let started: { billingUrl?: string; admissionGrpcPort?: number; admissionHttpPort?: number } = {};
    ctx.service = await startIngestChild({
      dataDir: ctx.opts.dataDir, command: SERVICES_COMMAND,
      env: {
        LOG_LEVEL: 'warn', CLICKHOUSE_URL: '', DATABASE_URL: ctx.stack!.databaseUrl, REDIS_KEY_PREFIX: DEMO_REDIS_PREFIX,
        BILLING_PORT: '0', ADMISSION_PORT: '0', ADMISSION_HTTP_PORT: '0', BILLING_SCHEDULE: 'off', BILLING_WATERMARK_LAG_SECONDS: '0',
      },
      onLine: (line) => { if (line.includes('phonebill started')) started = JSON.parse(line); },
    });
    ctx.stack!.billingUrl = started.billingUrl!;
    ctx.admission = { addr: `127.0.0.1:${started.admissionGrpcPort}`, httpPort: started.admissionHttpPort! };
    say(`ingest: gRPC ${ctx.service.addr}, HTTP http://127.0.0.1:${ctx.service.httpPort} (/metrics, /healthz, /sql), embedded ClickHouse in ${path.relative(REPO_ROOT, ctx.opts.dataDir)}/chdb`);
    say(`billing API: ${ctx.stack!.billingUrl} (bills page at /), the schedule off: the demo bills on its own clock`);
    say(`admission: gRPC ${ctx.admission.addr}, metrics http://127.0.0.1:${ctx.admission.httpPort}/metrics`);
  },
};

const generateTraffic: Stage = {
  title: 'Generate a month of traffic',
  async run(ctx) {
    const t0 = Date.now();
    ctx.traffic = createTraffic({
      seed: ctx.opts.seed,
      subscribers: ctx.opts.subscribers,
      calls: ctx.opts.calls,
      from: ctx.month.from,
      to: ctx.month.to,
      batchSize: 1000,
      // Future-start test events must lie in the future of the service's
      // clock, which is the real one even when the demo runs --as-of.
      serviceNow: Math.max(ctx.opts.asOf, systemClock.now()),
      callIdPrefix: `sw1-${ctx.month.label.replace('-', '')}`,
    });
    const subs = ctx.traffic.subscribers;
    const byCountry = (c: string) => subs.filter((s) => s.country === c).length;
    const zones = new Set(subs.map((s) => s.zone));
    say(`${fmtInt(subs.length)} subscribers (${fmtInt(byCountry('US'))} US, ${fmtInt(byCountry('CA'))} Canada) in ${zones.size} time zones, St. John's to Honolulu`);
    say(`${fmtInt(ctx.opts.calls)} calls starting in ${ctx.month.label} (UTC), a daily rhythm in each subscriber's local time, quieter weekends,`);
    say(`a sudden peak at ${new Date(ctx.traffic.peakHour!).toISOString().slice(0, 16)}Z (8× the usual rate), ~1 % resent duplicates and ~0.2 % invalid events.`);
    say(`(set up in ${((Date.now() - t0) / 1000).toFixed(1)} s; the calls themselves are generated while they are sent)`);
  },
};

const toWire = (e: TrafficEvent): WireEvent => ({
  call_id: e.call_id,
  source_number: e.source_number,
  target_number: e.target_number,
  start: millisToTimestamp(e.startMs),
  end: millisToTimestamp(e.endMs),
});

const ingestOverGrpc: Stage = {
  title: 'Send them through gRPC RecordCallBatches',
  async run(ctx) {
    const client = await connectIngest(ctx.service!.addr);
    const t0 = Date.now();
    let written = 0;
    let acked = 0;
    const timer = setInterval(() => {
      const s = (Date.now() - t0) / 1000;
      say(`  ${fmtInt(written)} events sent, ${fmtInt(acked)} acknowledged (durable), ${fmtInt(acked / s)} events/s`);
    }, 3000);
    try {
      const batches = function* () { for (const b of ctx.traffic!.batches()) yield { calls: b.map(toWire) }; };
      const totals = await sendStreams({
        client,
        method: 'RecordCallBatches',
        source: batches(),
        count: (b) => b.calls.length,
        streams: ctx.opts.streams,
        // Short streams: each is acknowledged once durable, so progress shows steadily.
        eventsPerStream: EVENTS_PER_STREAM,
        keepItems: false,
        onWritten: (n) => { written += n; },
        onResponse: (r) => { acked += r.accepted + r.duplicates + r.rejected; },
      });
      ctx.sent = { ...totals, seconds: (Date.now() - t0) / 1000 };
    } finally {
      clearInterval(timer);
      client.close();
    }
    const t = ctx.sent;
    const st = ctx.traffic!.stats;
    say(`${fmtInt(t.sent)} events in ${t.seconds.toFixed(1)} s over ${t.streams} streams (${ctx.opts.streams} at a time, ≤${fmtInt(EVENTS_PER_STREAM)} events each): ${fmtInt(t.sent / t.seconds)} events/s, acknowledged once durable`);
    const row = (k: string, got: number, want: number, what: string) => `  ${k.padEnd(11)}${fmtInt(got).padStart(11)}  ${got === want ? 'as generated' : `GENERATED ${fmtInt(want)}`}  ${what}`;
    say(row('accepted', t.accepted, st.calls, 'new calls stored'));
    say(row('duplicates', t.duplicates, st.duplicates, 'resent call_ids, counted once'));
    say(row('rejected', t.rejected, st.invalid, 'kept in rejected_calls with the reason'));
    if (t.accepted !== st.calls || t.duplicates !== st.duplicates || t.rejected !== st.invalid) {
      throw new Error('the service did not count what was generated (see above)');
    }
  },
};

interface Report { title: string; note?: string; sql: string }

function reports(ctx: DemoContext): Report[] {
  const day = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
  const month = `started_at >= '${day(ctx.month.from)}' AND started_at < '${day(ctx.month.to)}'`;
  return [
    {
      title: 'Calls and minutes by class',
      note: 'FINAL counts a call once even if two racing writers stored it twice and parts have not merged yet.',
      sql: `SELECT call_class, count() AS calls, round(sum(duration_ms) / 60000) AS minutes, round(avg(duration_ms) / 1000) AS avg_seconds
FROM phonebill.calls FINAL
WHERE ${month}
GROUP BY call_class
ORDER BY calls DESC`,
    },
    {
      title: 'Calls by hour of day (UTC)',
      note: 'UTC hours: the US evening is the UTC night. Each subscriber calls on a local-time rhythm; the store keeps UTC instants.',
      sql: `SELECT hour_utc, calls, bar(calls, 0, max(calls) OVER (), 40) AS chart
FROM (SELECT toHour(started_at) AS hour_utc, count() AS calls FROM phonebill.calls FINAL WHERE ${month} GROUP BY hour_utc)
ORDER BY hour_utc`,
    },
    {
      title: 'Busiest hours of the month (the peak stands out)',
      sql: `SELECT toStartOfHour(started_at) AS hour_utc, count() AS calls
FROM phonebill.calls FINAL
WHERE ${month}
GROUP BY hour_utc
ORDER BY calls DESC
LIMIT 5`,
    },
    {
      title: 'Top callers',
      sql: `SELECT source_number, count() AS calls, round(sum(duration_ms) / 60000) AS minutes, uniqExact(target_number) AS distinct_targets
FROM phonebill.calls FINAL
WHERE ${month}
GROUP BY source_number
ORDER BY calls DESC
LIMIT 10`,
    },
    {
      title: 'Where cross-border and international calls go',
      sql: `SELECT source_country, target_country, call_class, count() AS calls
FROM phonebill.calls FINAL
WHERE ${month} AND call_class IN ('cross_border', 'nanp_international')
GROUP BY source_country, target_country, call_class
ORDER BY calls DESC`,
    },
    {
      title: 'Duplicates: each resent call_id is stored once',
      note: 'Resends are counted by the service (the "duplicates" above and phonebill_ingest_events_duplicate_total on /metrics), never stored.',
      sql: `SELECT count() AS stored_rows, uniqExact(call_id) AS distinct_call_ids, stored_rows - distinct_call_ids AS extra_copies
FROM phonebill.calls`,
    },
    {
      title: 'Rejections by field and reason',
      note: 'Durations in reasons ("is 86396 s in the future") are folded to N so alike reasons group together.',
      sql: `SELECT field, replaceRegexpAll(reason, '[0-9]+ s ', 'N s ') AS reason, count() AS events
FROM phonebill.rejected_calls
GROUP BY field, reason
ORDER BY events DESC, field, reason`,
    },
  ];
}

const analystReports: Stage = {
  title: 'What an analyst sees (copy any query into `npm run sql -- "…"`)',
  async run(ctx) {
    const url = `http://127.0.0.1:${ctx.service!.httpPort}/sql`;
    for (const r of reports(ctx)) {
      say(`-- ${r.title}`);
      if (r.note) say(`-- ${r.note}`);
      say(`${r.sql};`);
      const t0 = Date.now();
      const res = await sqlViaService(url, r.sql);
      if (!res) throw new Error(`nothing answers on ${url}`);
      say(formatTable(res.meta, res.data));
      say(`(${Date.now() - t0} ms)`);
      say();
    }
    const metrics = await (await fetch(`http://127.0.0.1:${ctx.service!.httpPort}/metrics`)).text();
    const dup = /^phonebill_ingest_events_duplicate_total\S*\s+(\d+)/m.exec(metrics);
    if (dup) say(`/metrics: phonebill_ingest_events_duplicate_total ${dup[1]}`);
  },
};

const STAGES: Stage[] = [freshDataFolder, startServices, generateTraffic, createSubscribers, ingestOverGrpc, analystReports, billTheMonth, billingReports, overdueBlocksCalls];

async function main(): Promise<void> {
  const opts = options(process.argv.slice(2));
  const ctx: DemoContext = { opts, month: lastFullMonth(opts.asOf) };
  const t0 = Date.now();
  say(`phonebill demo, as of ${new Date(opts.asOf).toISOString()}: the month ${ctx.month.label}`);
  const stop = async () => { if (ctx.service) { await ctx.service.stop(); ctx.service = undefined; } };
  const onSignal = () => { void stop().finally(() => process.exit(130)); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    for (const [i, stage] of STAGES.entries()) {
      say();
      say(`== ${i + 1}. ${stage.title}`);
      const s0 = Date.now();
      await stage.run(ctx);
      say(`   (${((Date.now() - s0) / 1000).toFixed(1)} s)`);
    }
  } finally {
    await stop();
  }
  say();
  say(`Done in ${((Date.now() - t0) / 1000).toFixed(0)} s. The services are stopped; the data stays in ${path.relative(REPO_ROOT, opts.dataDir)}:`);
  say(`  PHONEBILL_DATA_DIR=${path.relative(REPO_ROOT, opts.dataDir)} npm run sql -- "SELECT call_class, count() FROM phonebill.calls FINAL GROUP BY call_class"`);
}

main().catch((e) => {
  console.error(`demo failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
