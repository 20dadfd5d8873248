/**
 * The demo's billing stages: the traffic's subscribers imported with the
 * operator's CLI, the month billed through the billing API, and what the
 * bills add up to. They talk to the running stack only through its public
 * interfaces (CLI, HTTP API with a JWT), as an operator would.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { DateTime } from 'luxon';
import { signDevToken } from '../../billing/auth/index.ts';
import { fmtInt, formatTable } from '../../cli/lib/table.ts';
import { REPO_ROOT } from '../lib/ingest-child.ts';
import type { Traffic } from '../lib/traffic.ts';

const run = promisify(execFile);
const say = (s = '') => process.stdout.write(`${s}\n`);

export interface BillingDemoContext {
  opts: { asOf: number; dataDir: string };
  month: { from: number; to: number; label: string };
  traffic?: Traffic;
  stack?: { billingUrl: string; jwtSecret: string; databaseUrl: string };
  billing?: { subscriberIds: Map<string, string>; runSummary?: Record<string, unknown> };
}

export const operatorToken = (ctx: BillingDemoContext) => signDevToken({
  secret: ctx.stack!.jwtSecret, issuer: 'phonebill', audience: 'phonebill-api', role: 'operator', ttlSeconds: 3600, now: Date.now(),
});

export async function api(ctx: BillingDemoContext, method: string, route: string, body?: unknown, token?: string): Promise<{ status: number; json: any; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`${ctx.stack!.billingUrl}${route}`, {
    method,
    headers: { authorization: `Bearer ${token ?? await operatorToken(ctx)}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, ms: performance.now() - t0 };
}

/** The subscription date as the company migrated to phonebill: the anniversary day kept, in the month before the demo month. */
function cutOverDate(subscribedOn: string, zone: string, monthFrom: number): string {
  const sub = DateTime.fromISO(subscribedOn, { zone });
  const cut = DateTime.fromMillis(monthFrom, { zone: 'UTC' }).minus({ months: 1 });
  if (sub.toMillis() >= cut.toMillis()) return subscribedOn;
  return cut.set({ day: Math.min(sub.day, cut.daysInMonth!) }).toISODate()!;
}

export const createSubscribers = {
  title: 'Create the subscribers (operator: phonebill subscribers import)',
  async run(ctx: BillingDemoContext): Promise<void> {
    const subs = ctx.traffic!.subscribers;
    const file = path.join(ctx.opts.dataDir, 'subscribers.csv');
    const lines = ['phone_number,subscription_date,time_zone,plan'];
    subs.forEach((s, i) => lines.push(`${s.phone},${cutOverDate(s.subscribedOn, s.zone, ctx.month.from)},${s.zone},${i % 10 === 9 ? 'saver' : 'standard'}`));
    fs.writeFileSync(file, lines.join('\n') + '\n');
    say(`${path.relative(REPO_ROOT, file)}: ${fmtInt(subs.length)} subscribers (anniversary days kept; those older than the cut-over start in the month before ${ctx.month.label}), 1 in 10 on the saver plan`);
    const t0 = Date.now();
    const { stdout } = await run(process.execPath, [path.join(REPO_ROOT, 'bin/phonebill.mjs'), 'subscribers', 'import', file], {
      cwd: REPO_ROOT, env: { ...process.env, DATABASE_URL: ctx.stack!.databaseUrl, PHONEBILL_DATA_DIR: ctx.opts.dataDir, LOG_LEVEL: 'warn' },
    }).catch((e: { stdout?: string; stderr?: string; message: string }) => { throw new Error(`subscribers import failed: ${e.stderr || e.stdout || e.message}`); });
    say(`$ npx phonebill subscribers import ${path.relative(REPO_ROOT, file)}`);
    say(stdout.trim().split('\n').slice(-1)[0] ?? '');
    say(`(${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    const client = new pg.Client({ connectionString: ctx.stack!.databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ id: string; phone_number: string }>('SELECT id, phone_number FROM subscribers');
      ctx.billing = { subscriberIds: new Map(rows.map((r) => [r.phone_number, r.id])) };
    } finally { await client.end(); }
  },
};

export const billTheMonth = {
  title: 'Bill it (operator: POST /v1/billing-runs)',
  async run(ctx: BillingDemoContext): Promise<void> {
    // As of now: the calls were ingested after the demo began, and a bill covers the calls
    // ingested up to its run (its watermark); any arriving later go on the next bill as late usage.
    const asOf = new Date(Math.max(ctx.opts.asOf, Date.now())).toISOString();
    const r = await api(ctx, 'POST', '/v1/billing-runs', { asOf });
    if (r.status !== 200) throw new Error(`billing run answered ${r.status}: ${JSON.stringify(r.json)}`);
    ctx.billing!.runSummary = r.json;
    say(`POST ${ctx.stack!.billingUrl}/v1/billing-runs {"asOf":"${asOf}"}  → 200 in ${(r.ms / 1000).toFixed(1)} s`);
    const s = r.json as { billsCreated: number; periodsDue: number; subscribersConsidered: number; watermark: string; timingsMs: Record<string, number> };
    say(`${fmtInt(s.billsCreated)} bills for ${fmtInt(s.periodsDue)} periods that ended by asOf − 1 h grace (${fmtInt(s.subscribersConsidered)} subscribers considered); calls ingested up to ${s.watermark}`);
    say(`stage timings (ms): ${Object.entries(s.timingsMs).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    const again = await api(ctx, 'POST', '/v1/billing-runs', { asOf });
    say(`the same run again → ${again.json.billsCreated} bills created (a rerun bills nothing twice)`);
  },
};

export const billingReports = {
  title: 'What the bills add up to (PostgreSQL)',
  async run(ctx: BillingDemoContext): Promise<void> {
    const client = new pg.Client({ connectionString: ctx.stack!.databaseUrl });
    await client.connect();
    try {
      const show = async (title: string, sql: string) => {
        say(`-- ${title}`);
        say(`${sql};`);
        const { rows, fields } = await client.query(sql);
        say(formatTable(fields.map((f) => ({ name: f.name, type: '' })), rows.map((r) => fields.map((f) => r[f.name]))));
        say();
      };
      await show('Revenue by line', `SELECT l->>'kind' AS line, count(*) AS bills, sum((l->>'calls')::bigint) AS calls,
       (sum((l->>'billableSeconds')::bigint) / 60)::bigint AS minutes, to_char(sum((l->>'amountCents')::bigint) / 100.0, 'FM999G999G990D00') AS usd
FROM bills, json_array_elements(lines) AS l
GROUP BY 1 ORDER BY sum((l->>'amountCents')::bigint) DESC`);
      await show('Bills by period end', `SELECT period_end_local::text AS billed_on, count(*) AS bills, to_char(sum(total_cents) / 100.0, 'FM999G999G990D00') AS usd
FROM bills GROUP BY 1 ORDER BY 1`);
      await show('Largest bills', `SELECT s.phone_number, s.time_zone, b.period_start_local::text AS period_start, b.period_end_local::text AS period_end, to_char(b.total_cents / 100.0, 'FM999G990D00') AS usd, b.id AS bill_id
FROM bills b JOIN subscribers s ON s.id = b.subscriber_id ORDER BY b.total_cents DESC LIMIT 5`);
      const { rows } = await client.query<{ id: string; subscriber_id: string; phone_number: string }>(
        `SELECT b.id, b.subscriber_id, s.phone_number FROM bills b JOIN subscribers s ON s.id = b.subscriber_id ORDER BY b.total_cents DESC LIMIT 1`);
      const top = rows[0];
      if (top) {
        const token = await signDevToken({ secret: ctx.stack!.jwtSecret, issuer: 'phonebill', audience: 'phonebill-api', role: 'subscriber', sub: top.subscriber_id, ttlSeconds: 3600, now: Date.now() });
        const bill = await api(ctx, 'GET', `/v1/bills/${top.id}`, undefined, token);
        const calls = await api(ctx, 'GET', `/v1/bills/${top.id}/calls?limit=3`, undefined, token);
        const other = await api(ctx, 'GET', `/v1/bills/${top.id}`, undefined, await signDevToken({ secret: ctx.stack!.jwtSecret, issuer: 'phonebill', audience: 'phonebill-api', role: 'subscriber', sub: [...ctx.billing!.subscriberIds.values()].find((id) => id !== top.subscriber_id)!, ttlSeconds: 600, now: Date.now() }));
        say(`-- The largest bill, as its subscriber (${top.phone_number}) reads it: GET /v1/bills/${top.id}`);
        say(JSON.stringify(bill.json, null, 2));
        say(`-- Its first itemized calls: GET /v1/bills/${top.id}/calls?limit=3`);
        say(JSON.stringify(calls.json.calls, null, 2));
        say(`-- Another subscriber asking for it: ${other.status} ${JSON.stringify(other.json)}`);
        say();
        say('To read it yourself after the demo (the stack keeps the demo data):');
        say(`  PHONEBILL_DATA_DIR=${path.relative(REPO_ROOT, ctx.opts.dataDir)} DATABASE_URL=${ctx.stack!.databaseUrl} npm start`);
        say(`  curl -s -H "Authorization: Bearer $(PHONEBILL_DATA_DIR=${path.relative(REPO_ROOT, ctx.opts.dataDir)} npx phonebill token --subscriber ${top.subscriber_id})" http://127.0.0.1:8080/v1/bills/${top.id}`);
        say('  or open http://127.0.0.1:8080/ and paste that token.');
      }
    } finally { await client.end(); }
  },
};
