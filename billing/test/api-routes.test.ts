/** The billing API's routes, against a real PostgreSQL: exact statuses, content types and bodies. */
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/log.ts';
import { createPool } from '../../core/postgres/index.ts';
import { freshPostgres, type FreshPostgres } from '../../test/pg.ts';
import { bearer, makeApp, NOW, token, type App } from './api-helpers.ts';
import { insertBill, insertSubscriber, NY_PERIODS } from './pg-fixtures.ts';

const JSON_TYPE = 'application/json; charset=utf-8';
let db: FreshPostgres | undefined;
let app: App | undefined;
afterEach(async () => { await app?.close(); app = undefined; await db?.close(); db = undefined; });

async function setup(extra: Parameters<typeof makeApp>[1] = {}) {
  db = await freshPostgres();
  ({ app } = makeApp(db, extra));
  return { db, app: app!, op: bearer(await token('operator')) };
}

/** A database shared by tests that only read or are refused (closed in afterAll). */
async function sharedSetup() {
  const db = await freshPostgres();
  const { app } = makeApp(db);
  return { db, app, op: bearer(await token('operator')), close: async () => { await app.close(); await db.close(); } };
}
let queries: Promise<Awaited<ReturnType<typeof sharedSetup>>> | undefined;
const sharedQueries = () => (queries ??= sharedSetup());
afterAll(async () => { await (await queries)?.close(); });

const NEW = { phoneNumber: '+12025550143', subscriptionDate: '2024-01-31', timeZone: 'America/New_York' };

describe('POST /v1/subscribers', () => {
  it('creates a subscriber: 201, Location, the stored subscriber; GET returns the same', async () => {
    const { app, op } = await setup();
    const res = await app.inject({ method: 'POST', url: '/v1/subscribers', headers: op, payload: NEW });
    expect(res.statusCode).toBe(201);
    expect(res.headers['content-type']).toBe(JSON_TYPE);
    const body = res.json();
    expect(body).toEqual({ ...NEW, id: expect.stringMatching(/^[0-9a-f-]{36}$/), anniversaryDay: 31, plan: 'standard', status: 'active', createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/) });
    expect(res.headers.location).toBe(`/v1/subscribers/${body.id}`);
    const got = await app.inject({ method: 'GET', url: `/v1/subscribers/${body.id.toUpperCase()}`, headers: op });
    expect([got.statusCode, got.headers['content-type'], got.json()]).toEqual([200, JSON_TYPE, body]);
  });

  it('accepts another plan of the tariff', async () => {
    const { app, op } = await setup();
    const res = await app.inject({ method: 'POST', url: '/v1/subscribers', headers: op, payload: { ...NEW, plan: 'saver' } });
    expect([res.statusCode, res.json().plan]).toEqual([201, 'saver']);
  });

  it('a number already subscribed: 409 naming phoneNumber', async () => {
    const { app, op } = await setup();
    await app.inject({ method: 'POST', url: '/v1/subscribers', headers: op, payload: NEW });
    const res = await app.inject({ method: 'POST', url: '/v1/subscribers', headers: op, payload: { ...NEW, timeZone: 'America/Chicago' } });
    expect([res.statusCode, res.headers['content-type']]).toEqual([409, JSON_TYPE]);
    expect(res.json()).toEqual({ error: { code: 'SUBSCRIBER_EXISTS', message: 'phoneNumber: +12025550143 is already a subscriber', field: 'phoneNumber' } });
  });

  const cases: [string, unknown, string, string][] = [
    ['missing phoneNumber', { subscriptionDate: '2024-01-31', timeZone: 'America/New_York' }, 'phoneNumber', 'phoneNumber: is required'],
    ['unknown field', { ...NEW, email: 'a@b.c' }, 'email', 'email: is not a known field'],
    ['phoneNumber not a string', { ...NEW, phoneNumber: { n: 1 } }, 'phoneNumber', 'phoneNumber: must be string'],
    ['phoneNumber not E.164', { ...NEW, phoneNumber: '202-555-0143' }, 'phoneNumber', 'phoneNumber: must be E.164 +1NPANXXXXXX'],
    ['phoneNumber outside NANP', { ...NEW, phoneNumber: '+442079460000' }, 'phoneNumber', 'phoneNumber: not a North American (NANP) number'],
    ['phoneNumber toll-free', { ...NEW, phoneNumber: '+18005550100' }, 'phoneNumber', 'phoneNumber: +18005550100 is toll-free, not a geographic subscriber line'],
    ['phoneNumber premium', { ...NEW, phoneNumber: '+19005550100' }, 'phoneNumber', 'phoneNumber: +19005550100 is a premium-rate (900) number, not a geographic subscriber line'],
    ['date not a date', { ...NEW, subscriptionDate: '31/01/2024' }, 'subscriptionDate', 'subscriptionDate: must be a calendar date YYYY-MM-DD, got "31/01/2024"'],
    ['date that does not exist', { ...NEW, subscriptionDate: '2023-02-29' }, 'subscriptionDate', 'subscriptionDate: 2023-02-29 does not exist (2023-02 has 28 days)'],
    ['zone outside the US and Canada', { ...NEW, timeZone: 'Europe/Paris' }, 'timeZone', 'timeZone: time zone "Europe/Paris" is not served: only US and Canadian zones from America/St_Johns to Pacific/Honolulu (incl. America/Puerto_Rico and America/St_Thomas)'],
    ['unknown plan', { ...NEW, plan: 'gold' }, 'plan', 'plan: unknown plan "gold"; plans: saver, standard'],
  ];
  describe('400 naming the field', () => {
    // Refused input writes nothing, so these cases share one database.
    let shared: Awaited<ReturnType<typeof sharedSetup>>;
    beforeAll(async () => { shared = await sharedSetup(); });
    afterAll(async () => { await shared?.close(); });
    for (const [name, payload, field, message] of cases) {
      it(name, async () => {
        const res = await shared.app.inject({ method: 'POST', url: '/v1/subscribers', headers: shared.op, payload: payload as object });
        expect([res.statusCode, res.headers['content-type']]).toEqual([400, JSON_TYPE]);
        expect(res.json()).toEqual({ error: { code: 'INVALID_ARGUMENT', message, field } });
      });
    }
    it('and nothing was stored', async () => {
      const { rows } = await shared.db.pool.query('SELECT count(*)::int AS n FROM subscribers');
      expect(rows[0].n).toBe(0);
    });
  });

  it('several bad fields: the first is named, all are listed', async () => {
    const { app, op } = await setup();
    const res = await app.inject({ method: 'POST', url: '/v1/subscribers', headers: op, payload: { phoneNumber: '+1', subscriptionDate: '2024-13-01', timeZone: 'Mars/Olympus' } });
    expect(res.json()).toEqual({ error: {
      code: 'INVALID_ARGUMENT', field: 'phoneNumber',
      message: 'phoneNumber: must be E.164 +1NPANXXXXXX; subscriptionDate: month must be 01-12, got 2024-13-01; timeZone: unknown time zone "Mars/Olympus"; use an IANA name such as America/New_York',
    } });
  });

  it('bad JSON, a non-JSON body and an oversized body get clean errors', async () => {
    const { app, op } = await setup();
    const bad = await app.inject({ method: 'POST', url: '/v1/subscribers', headers: { ...op, 'content-type': 'application/json' }, payload: '{"phoneNumber":' });
    expect([bad.statusCode, bad.json()]).toEqual([400, { error: { code: 'INVALID_JSON', message: 'the body is not valid JSON' } }]);
    const text = await app.inject({ method: 'POST', url: '/v1/subscribers', headers: { ...op, 'content-type': 'text/plain' }, payload: 'hello' });
    expect([text.statusCode, text.json()]).toEqual([415, { error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'send JSON with Content-Type: application/json' } }]);
    const big = await app.inject({ method: 'POST', url: '/v1/subscribers', headers: op, payload: { ...NEW, plan: 'x'.repeat(70_000) } });
    expect([big.statusCode, big.json()]).toEqual([413, { error: { code: 'PAYLOAD_TOO_LARGE', message: 'the body is too large' } }]);
  });

  it('waits for onSubscriberCreated before answering (admission publishes the number)', async () => {
    const seen: string[] = [];
    const { app, op } = await setup({ onSubscriberCreated: async (s) => { await new Promise((r) => setTimeout(r, 20)); seen.push(s.phoneNumber); } });
    const res = await app.inject({ method: 'POST', url: '/v1/subscribers', headers: op, payload: NEW });
    expect([res.statusCode, seen]).toEqual([201, ['+12025550143']]);
  });
});

describe('subscriber reads', () => {
  it('unknown subscriber: 404 on the subscriber and on its bills; a malformed id: 400 naming id', async () => {
    const { app, op } = await setup();
    const missing = '00000000-0000-4000-8000-000000000000';
    for (const url of [`/v1/subscribers/${missing}`, `/v1/subscribers/${missing}/bills`]) {
      const res = await app.inject({ method: 'GET', url, headers: op });
      expect([res.statusCode, res.headers['content-type'], res.json()]).toEqual([404, JSON_TYPE, { error: { code: 'SUBSCRIBER_NOT_FOUND', message: 'subscriber not found' } }]);
    }
    const bad = await app.inject({ method: 'GET', url: '/v1/subscribers/42', headers: op });
    expect([bad.statusCode, bad.json()]).toEqual([400, { error: { code: 'INVALID_ARGUMENT', message: 'id: must be a UUID', field: 'id' } }]);
  });
});

describe('bills', () => {
  async function withBills() {
    const s = await setup();
    const alice = await insertSubscriber(s.db.pool, { phoneNumber: '+12025550100' });
    const ids: string[] = [];
    for (const p of NY_PERIODS) ids.push(await insertBill(s.db.pool, { subscriberId: alice, ...p }));
    // The newest bill: calls, a free line, and late usage from the first period.
    const last = NY_PERIODS[2];
    const newest = await insertBill(s.db.pool, {
      subscriberId: alice, periodIndex: 3, periodStart: '2024-04-15T04:00:00Z', periodEnd: '2024-05-15T04:00:00Z',
      periodStartLocal: '2024-04-15', periodEndLocal: '2024-05-15', nextPeriodEnd: '2024-06-15T04:00:00Z', issuedAt: '2024-05-15T05:00:00Z', dueAt: '2024-06-05T05:00:00Z',
      paidCents: 500, watermark: '2024-05-15T04:59:59.123Z',
      lines: [
        { kind: 'monthly_service', description: 'Monthly service', calls: 0, billableSeconds: 0, amountCents: 2000 },
        { kind: 'domestic', description: 'Domestic', calls: 3, billableSeconds: 300, amountCents: 25 },
        { kind: 'toll_free', description: 'Toll-free', calls: 1, billableSeconds: 120, amountCents: 0 },
        { kind: 'late_usage', description: 'Late usage for period 2024-03-15 to 2024-04-15', calls: 1, billableSeconds: 60, amountCents: 5, usagePeriodStart: last.periodStart, usagePeriodEnd: last.periodEnd },
      ],
    });
    return { ...s, alice, ids: [...ids, newest], asAlice: bearer(await token('subscriber', alice)) };
  }

  it('GET /v1/bills/{id}: the whole bill, lines in order, balance and late-usage period', async () => {
    const { app, alice, ids, asAlice } = await withBills();
    const res = await app.inject({ method: 'GET', url: `/v1/bills/${ids[3]}`, headers: asAlice });
    expect([res.statusCode, res.headers['content-type']]).toEqual([200, JSON_TYPE]);
    expect(res.json()).toEqual({
      id: ids[3], subscriberId: alice, periodIndex: 3,
      periodStart: '2024-04-15T04:00:00.000Z', periodEnd: '2024-05-15T04:00:00.000Z',
      periodStartLocal: '2024-04-15', periodEndLocal: '2024-05-15',
      issuedAt: '2024-05-15T05:00:00.000Z', dueAt: '2024-06-05T05:00:00.000Z',
      currency: 'USD', totalCents: 2030, paidCents: 500, balanceCents: 1530, status: 'open',
      watermark: '2024-05-15T04:59:59.123Z',
      lines: [
        { kind: 'monthly_service', description: 'Monthly service', calls: 0, minutes: 0, billableSeconds: 0, amountCents: 2000, usagePeriodStart: null, usagePeriodEnd: null },
        { kind: 'domestic', description: 'Domestic', calls: 3, minutes: 5, billableSeconds: 300, amountCents: 25, usagePeriodStart: null, usagePeriodEnd: null },
        { kind: 'toll_free', description: 'Toll-free', calls: 1, minutes: 2, billableSeconds: 120, amountCents: 0, usagePeriodStart: null, usagePeriodEnd: null },
        { kind: 'late_usage', description: 'Late usage for period 2024-03-15 to 2024-04-15', calls: 1, minutes: 1, billableSeconds: 60, amountCents: 5, usagePeriodStart: '2024-03-15T04:00:00.000Z', usagePeriodEnd: '2024-04-15T04:00:00.000Z' },
      ],
    });
  });

  it('GET /v1/bills pages newest first with nextCursor until null', async () => {
    const { app, ids, asAlice } = await withBills();
    const p1 = await app.inject({ method: 'GET', url: '/v1/bills?limit=3', headers: asAlice });
    expect(p1.statusCode).toBe(200);
    const b1 = p1.json();
    expect(b1.bills.map((b: { id: string }) => b.id)).toEqual([ids[3], ids[2], ids[1]]);
    expect(b1.bills[2]).toEqual({
      id: ids[1], subscriberId: expect.any(String), periodIndex: 1,
      periodStart: '2024-02-15T05:00:00.000Z', periodEnd: '2024-03-15T04:00:00.000Z', periodStartLocal: '2024-02-15', periodEndLocal: '2024-03-15',
      issuedAt: '2024-03-15T05:00:00.000Z', dueAt: '2024-04-05T05:00:00.000Z', currency: 'USD', totalCents: 2000, paidCents: 0, balanceCents: 2000, status: 'open',
      watermark: '2024-03-15T05:00:00.000Z',
    });
    expect(b1.nextCursor).toEqual(expect.any(String));
    const p2 = (await app.inject({ method: 'GET', url: `/v1/bills?limit=3&cursor=${b1.nextCursor}`, headers: asAlice })).json();
    expect(p2).toEqual({ bills: [expect.objectContaining({ id: ids[0] })], nextCursor: null });
    const all = (await app.inject({ method: 'GET', url: '/v1/bills', headers: asAlice })).json();
    expect([all.bills.length, all.nextCursor]).toEqual([4, null]);
  });

  it('the operator lists a subscriber\'s bills the same way', async () => {
    const { app, op, alice, ids } = await withBills();
    const res = await app.inject({ method: 'GET', url: `/v1/subscribers/${alice}/bills?limit=2`, headers: op });
    const body = res.json();
    expect([res.statusCode, body.bills.map((b: { id: string }) => b.id)]).toEqual([200, [ids[3], ids[2]]]);
    const next = (await app.inject({ method: 'GET', url: `/v1/subscribers/${alice}/bills?limit=2&cursor=${body.nextCursor}`, headers: op })).json();
    expect(next.bills.map((b: { id: string }) => b.id)).toEqual([ids[1], ids[0]]);
  });

  it('a subscriber with no bills gets an empty page', async () => {
    const { app, db } = await setup();
    const carol = await insertSubscriber(db.pool, { phoneNumber: '+12025550199' });
    const res = await app.inject({ method: 'GET', url: '/v1/bills', headers: bearer(await token('subscriber', carol)) });
    expect([res.statusCode, res.json()]).toEqual([200, { bills: [], nextCursor: null }]);
  });

  it('payment state shows through: paid bill, its balance', async () => {
    const { app, db, ids, asAlice } = await withBills();
    await db.pool.query(`UPDATE bills SET paid_cents = 2000, status = 'paid' WHERE id = $1`, [ids[0]]);
    const b = (await app.inject({ method: 'GET', url: `/v1/bills/${ids[0]}`, headers: asAlice })).json();
    expect([b.status, b.paidCents, b.balanceCents]).toEqual(['paid', 2000, 0]);
  });

  const badQueries: [string, string, string][] = [
    ['limit=0', 'limit', 'limit: must be >= 1'],
    ['limit=101', 'limit', 'limit: must be <= 100'],
    ['limit=ten', 'limit', 'limit: must be integer'],
    ['cursor=bm9wZQ', 'cursor', 'cursor: is not a cursor returned by this API'],
  ];
  for (const [q, field, message] of badQueries) {
    it(`GET /v1/bills?${q}: 400 naming ${field}`, async () => {
      const { app } = await sharedQueries();
      const res = await app.inject({ method: 'GET', url: `/v1/bills?${q}`, headers: bearer(await token('subscriber', '00000000-0000-4000-8000-000000000001')) });
      expect([res.statusCode, res.headers['content-type'], res.json()]).toEqual([400, JSON_TYPE, {
        error: { code: field === 'cursor' ? 'INVALID_CURSOR' : 'INVALID_ARGUMENT', message, field },
      }]);
    });
  }

  it('GET /v1/bills/{id}: malformed id 400, missing 404', async () => {
    const { app, asAlice } = await withBills();
    const bad = await app.inject({ method: 'GET', url: '/v1/bills/not-a-uuid', headers: asAlice });
    expect([bad.statusCode, bad.json()]).toEqual([400, { error: { code: 'INVALID_ARGUMENT', message: 'billId: must be a UUID', field: 'billId' } }]);
    const missing = await app.inject({ method: 'GET', url: '/v1/bills/00000000-0000-4000-8000-000000000000', headers: asAlice });
    expect([missing.statusCode, missing.json()]).toEqual([404, { error: { code: 'BILL_NOT_FOUND', message: 'bill not found' } }]);
  });
});

describe('GET /v1/bills/{id}/calls', () => {
  it('503 when no itemizer is wired', async () => {
    const { app, db } = await setup();
    const alice = await insertSubscriber(db.pool, { phoneNumber: '+12025550100' });
    const bill = await insertBill(db.pool, { subscriberId: alice, ...NY_PERIODS[0] });
    const res = await app.inject({ method: 'GET', url: `/v1/bills/${bill}/calls`, headers: bearer(await token('subscriber', alice)) });
    expect([res.statusCode, res.headers['content-type'], res.json()]).toEqual([503, JSON_TYPE, { error: { code: 'CALLS_UNAVAILABLE', message: 'itemized calls are not enabled in this process' } }]);
  });

  it('passes the stored bill (with its watermark) and the page to listBillCalls', async () => {
    const got: unknown[] = [];
    const { app, db } = await setup({
      listBillCalls: async (bill, page) => {
        got.push({ id: bill.id, periodStart: bill.periodStart.toISOString(), watermark: bill.watermark.toISOString(), page });
        return { calls: [{ callId: 'c1', durationSeconds: 61 }], nextCursor: 'n1' };
      },
    });
    const alice = await insertSubscriber(db.pool, { phoneNumber: '+12025550100' });
    const bill = await insertBill(db.pool, { subscriberId: alice, ...NY_PERIODS[0], watermark: '2024-02-15T05:30:00Z' });
    const headers = bearer(await token('subscriber', alice));
    const res = await app.inject({ method: 'GET', url: `/v1/bills/${bill}/calls?limit=2&cursor=abc`, headers });
    expect([res.statusCode, res.json()]).toEqual([200, { billId: bill, calls: [{ callId: 'c1', durationSeconds: 61 }], nextCursor: 'n1' }]);
    await app.inject({ method: 'GET', url: `/v1/bills/${bill}/calls`, headers });
    expect(got).toEqual([
      { id: bill, periodStart: '2024-01-15T05:00:00.000Z', watermark: '2024-02-15T05:30:00.000Z', page: { limit: 2, cursor: 'abc' } },
      { id: bill, periodStart: '2024-01-15T05:00:00.000Z', watermark: '2024-02-15T05:30:00.000Z', page: { limit: 100 } },
    ]);
  });
});

describe('POST /v1/billing-runs', () => {
  it('503 when no billing run is wired', async () => {
    const { app, op } = await setup();
    const res = await app.inject({ method: 'POST', url: '/v1/billing-runs', headers: op, payload: {} });
    expect([res.statusCode, res.json()]).toEqual([503, { error: { code: 'BILLING_RUNS_UNAVAILABLE', message: 'billing runs are not enabled in this process' } }]);
  });

  it('runs as of the given instant, or the clock\'s now without a body; answers the summary', async () => {
    const asOfs: string[] = [];
    const { app, op } = await setup({ runBilling: async ({ asOf }) => { asOfs.push(asOf.toISOString()); return { runId: 'r', asOf: asOf.toISOString(), billsCreated: 7 }; } });
    const a = await app.inject({ method: 'POST', url: '/v1/billing-runs', headers: op, payload: { asOf: '2024-06-01T00:00:00-04:00' } });
    expect([a.statusCode, a.headers['content-type'], a.json()]).toEqual([200, JSON_TYPE, { runId: 'r', asOf: '2024-06-01T04:00:00.000Z', billsCreated: 7 }]);
    const b = await app.inject({ method: 'POST', url: '/v1/billing-runs', headers: op });
    expect([b.statusCode, b.json().asOf]).toEqual([200, '2024-05-01T12:00:00.000Z']);
    expect(asOfs).toEqual(['2024-06-01T04:00:00.000Z', new Date(NOW).toISOString()]);
    const bad = await app.inject({ method: 'POST', url: '/v1/billing-runs', headers: op, payload: { asOf: '2024-06-01' } });
    expect([bad.statusCode, bad.json()]).toEqual([400, { error: { code: 'INVALID_ARGUMENT', message: 'asOf: must be an RFC 3339 instant such as 2024-03-01T00:00:00Z', field: 'asOf' } }]);
  });

  it('an unexpected failure is a bare 500; the details go to the log only', async () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'error', destination: new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }) });
    const { app, op } = await setup({ log, runBilling: async () => { throw new Error('relation "bills" violates constraint: INSERT INTO bills VALUES (secret)'); } });
    const res = await app.inject({ method: 'POST', url: '/v1/billing-runs', headers: op, payload: {} });
    expect([res.statusCode, res.headers['content-type'], res.body]).toEqual([500, JSON_TYPE, '{"error":{"code":"INTERNAL","message":"internal error"}}']);
    expect(lines.join('')).toContain('INSERT INTO bills VALUES (secret)');
    expect(lines.join('')).toContain('"msg":"unhandled error"');
  });
});

describe('database down', () => {
  it('reads answer 503 DATABASE_UNAVAILABLE and /healthz says unavailable', async () => {
    db = await freshPostgres();
    const dead = createPool('postgres://postgres@127.0.0.1:1/none', { max: 1 });
    ({ app } = makeApp({ ...db, pool: dead }));
    const res = await app!.inject({ method: 'GET', url: '/v1/bills', headers: bearer(await token('subscriber', '00000000-0000-4000-8000-000000000001')) });
    expect([res.statusCode, res.json()]).toEqual([503, { error: { code: 'DATABASE_UNAVAILABLE', message: 'the database is unavailable' } }]);
    const h = await app!.inject({ method: 'GET', url: '/healthz' });
    expect([h.statusCode, h.json()]).toEqual([503, { status: 'unavailable', reason: 'database unreachable' }]);
    await dead.end();
  });
});
