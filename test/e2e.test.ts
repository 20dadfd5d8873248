/**
 * End to end through the public interfaces only, against `npm start`'s stack
 * as a child process (its own data folder, PostgreSQL database and Redis key
 * prefix): a subscriber created through the API → calls ingested over gRPC →
 * billed → the due time passes (a billing run as of after it) → CanPlaceCall
 * says OVERDUE and 911 says EMERGENCY → payment → ALLOWED.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { millisToTimestamp, phonebillV1 } from '../core/grpc/proto.ts';
import { signDevToken } from '../billing/auth/index.ts';
import { startIngestChild, type IngestChild } from '../scripts/lib/ingest-child.ts';
import { freshPostgres, type FreshPostgres } from './pg.ts';
import { tempDir } from './helpers.ts';

const PHONE = '+12125550143';
const CALLEE = '+13125550187';
const SECRET = randomBytes(32).toString('base64url');

let db: FreshPostgres;
let stack: IngestChild;
let dataDir: string;
let billingUrl = '';
let admissionAddr = '';

const token = (role: 'operator' | 'subscriber', sub?: string) =>
  signDevToken({ secret: SECRET, issuer: 'phonebill', audience: 'phonebill-api', role, ...(sub ? { sub } : {}), ttlSeconds: 600, now: Date.now() });

async function api(method: string, route: string, body?: unknown, bearer?: string): Promise<{ status: number; json: any }> {
  const res = await fetch(`${billingUrl}${route}`, {
    method,
    headers: { authorization: `Bearer ${bearer ?? await token('operator')}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

function unary<T>(client: grpc.Client, method: string, req: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, Function>)[method]!(req, { deadline: Date.now() + 5000 }, (err: Error | null, res: T) => (err ? reject(err) : resolve(res)));
  });
}

/** Asks until the answer has the expected reason (state travels PostgreSQL → Redis → replica), at most 10 s. */
async function decisionBecomes(client: grpc.Client, target: string, reason: string): Promise<{ allowed: boolean; reason: string }> {
  const until = Date.now() + 10_000;
  for (;;) {
    const d = await unary<{ allowed: boolean; reason: string }>(client, 'CanPlaceCall', { source_number: PHONE, target_number: target });
    if (d.reason === reason || Date.now() > until) return d;
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  db = await freshPostgres({ migrate: false, prefix: 'e2e' });
  dataDir = tempDir('phonebill-e2e-');
  fs.writeFileSync(path.join(dataDir, 'dev-jwt-secret'), `${SECRET}\n`, { mode: 0o600 });
  let started: { billingUrl?: string; admissionGrpcPort?: number } = {};
  stack = await startIngestChild({
    dataDir,
    command: [process.execPath, '--import', 'tsx', 'scripts/start.ts'],
    env: {
      LOG_LEVEL: 'warn', CLICKHOUSE_URL: '', DATABASE_URL: db.url, REDIS_KEY_PREFIX: `e2e_${randomBytes(4).toString('hex')}:`,
      BILLING_PORT: '0', ADMISSION_PORT: '0', ADMISSION_HTTP_PORT: '0', BILLING_SCHEDULE: 'off', BILLING_WATERMARK_LAG_SECONDS: '0',
    },
    onLine: (line) => { if (line.includes('phonebill started')) started = JSON.parse(line); },
    timeoutMs: 90_000,
  });
  billingUrl = started.billingUrl!;
  admissionAddr = `127.0.0.1:${started.admissionGrpcPort}`;
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await db?.close();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('end to end through the public interfaces', () => {
  it('subscriber created → calls ingested → billed → due time passes → OVERDUE, 911 EMERGENCY → payment → ALLOWED', async () => {
    const now = Date.now();
    // Subscribed 40 days ago (New York): period 0 ended about 10 days ago and is billed now.
    const subscriptionDate = DateTime.fromMillis(now - 40 * 86_400_000, { zone: 'America/New_York' }).toISODate()!;
    const created = await api('POST', '/v1/subscribers', { phoneNumber: PHONE, subscriptionDate, timeZone: 'America/New_York' });
    expect(created.status).toBe(201);
    const subscriberId = created.json.id as string;

    const { Ingest, Admission } = phonebillV1();
    const ingest = new Ingest(stack.addr, grpc.credentials.createInsecure()) as grpc.Client;
    const admission = new Admission(admissionAddr, grpc.credentials.createInsecure()) as grpc.Client;
    try {
      // Two calls in period 0: 61 s and 30 s domestic, 2 + 1 billable minutes at 5 ¢.
      const start = now - 35 * 86_400_000;
      for (const [id, ms] of [['e2e-1', 61_000], ['e2e-2', 30_000]] as const) {
        const r = await unary<{ accepted: string }>(ingest, 'RecordCall', {
          call_id: id, source_number: PHONE, target_number: CALLEE, start: millisToTimestamp(start), end: millisToTimestamp(start + ms),
        });
        expect(Number(r.accepted)).toBe(1);
      }
      expect(await decisionBecomes(admission, CALLEE, 'ALLOWED')).toEqual({ allowed: true, reason: 'ALLOWED' });

      const run = await api('POST', '/v1/billing-runs', { asOf: new Date().toISOString() });
      expect(run.status).toBe(200);
      expect(run.json.billsCreated).toBe(1);
      const bills = await api('GET', '/v1/bills', undefined, await token('subscriber', subscriberId));
      expect(bills.status).toBe(200);
      const bill = (await api('GET', `/v1/bills/${bills.json.bills[0].id}`, undefined, await token('subscriber', subscriberId))).json;
      expect(bill.totalCents).toBe(2015);
      expect(bill.lines.map((l: { kind: string; calls: number; amountCents: number }) => [l.kind, l.calls, l.amountCents]))
        .toEqual([['monthly_service', 0, 2000], ['domestic', 2, 15]]);
      expect(bill.status).toBe('open');

      // The due time passes: a run as of a day after it evaluates overdue as of then.
      const late = await api('POST', '/v1/billing-runs', { asOf: new Date(Date.parse(bill.dueAt) + 86_400_000).toISOString() });
      expect(late.status).toBe(200);
      expect(await decisionBecomes(admission, CALLEE, 'OVERDUE')).toEqual({ allowed: false, reason: 'OVERDUE' });
      expect(await unary(admission, 'CanPlaceCall', { source_number: PHONE, target_number: '911' })).toEqual({ allowed: true, reason: 'EMERGENCY' });

      const paid = await api('POST', '/v1/payments', { billId: bill.id, amountCents: 2015, idempotencyKey: `e2e-${bill.id}` });
      expect(paid.status).toBe(201);
      expect(paid.json.bill).toMatchObject({ id: bill.id, paidCents: 2015, balanceCents: 0, status: 'paid' });
      expect(await decisionBecomes(admission, CALLEE, 'ALLOWED')).toEqual({ allowed: true, reason: 'ALLOWED' });
    } finally {
      ingest.close();
      admission.close();
    }
  }, 120_000);
});
