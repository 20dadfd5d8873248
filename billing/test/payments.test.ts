/**
 * POST /v1/payments and GET /v1/payments through the real app (inject),
 * real PostgreSQL, and the overdue service publishing to the shared local
 * Redis under a prefix of the test's own. The clock stands at 2024-05-01T12:00Z:
 * NY_PERIODS[0] and [1] are past due, [2] (due 2024-05-06) is not.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { fixedClock } from '../../core/clock.ts';
import { silentLogger } from '../../core/log.ts';
import { bucketOf, redisKeys } from '../../core/redis/layout.ts';
import { freshPostgres, type FreshPostgres } from '../../test/pg.ts';
import { createRedisClient } from '../adapters/redis/index.ts';
import { createOverdueService, type OverdueService } from '../overdue/index.ts';
import { bearer, makeApp, NOW, token, type App } from './api-helpers.ts';
import { insertBill, insertSubscriber, NY_PERIODS } from './pg-fixtures.ts';
import { deletePrefix, listen, readSet, SHARED_REDIS_URL, testPrefix, until } from './overdue-helpers.ts';

const A = '+12125550111';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const JSON_TYPE = 'application/json; charset=utf-8';

let db: FreshPostgres;
let redis: Redis;
let admin: Redis;
let prefix: string;
let overdue: OverdueService;
let app: App;
let op: Record<string, string>;
let processor: Record<string, string>;

beforeAll(async () => {
  db = await freshPostgres({ prefix: 'payments' });
  prefix = testPrefix();
  redis = createRedisClient({ url: SHARED_REDIS_URL, log: silentLogger() });
  admin = new Redis(SHARED_REDIS_URL);
  await until(async () => redis.status === 'ready', 5000);
  // The same instant as the app's clock (api-helpers NOW).
  overdue = createOverdueService({
    pool: db.pool, redis, clock: fixedClock(NOW), log: silentLogger(),
    config: { redisKeyPrefix: prefix, overdueSweepSeconds: 60, redisRebuildCheckSeconds: 2 },
  });
  ({ app } = makeApp(db, { onPaymentRecorded: (r) => overdue.onPayment({ subscriberId: r.payment.subscriberId }) }));
  op = bearer(await token('operator'));
  processor = bearer(await token('payments'));
});

afterAll(async () => {
  await app?.close();
  await overdue?.close();
  if (admin) await deletePrefix(admin, prefix);
  redis?.disconnect();
  admin?.disconnect();
  await db?.close();
});

let phoneSeq = 0;
/** A subscriber of its own per test (one shared database), with bills for the given periods. */
async function subscriberWithBills(periods: number[], over: Partial<Parameters<typeof insertBill>[1]>[] = []): Promise<{ id: string; phone: string; bills: string[] }> {
  const phone = `+1212555${String(2000 + ++phoneSeq).padStart(4, '0')}`;
  const id = await insertSubscriber(db.pool, { phoneNumber: phone });
  const bills: string[] = [];
  for (const [i, p] of periods.entries()) bills.push(await insertBill(db.pool, { subscriberId: id, ...NY_PERIODS[p]!, ...over[i] }));
  return { id, phone, bills };
}

const pay = (body: unknown, headers = op) => app.inject({ method: 'POST', url: '/v1/payments', headers, payload: body as object });
const getBill = async (id: string) => (await app.inject({ method: 'GET', url: `/v1/bills/${id}`, headers: op })).json();
let keySeq = 0;
const key = () => `key-${process.pid}-${++keySeq}`;

describe('POST /v1/payments', () => {
  it('records a payment in full: 201 with the payment and the bill, now paid; the bill JSON shows paidCents and balanceCents', async () => {
    const s = await subscriberWithBills([2]);
    const k = key();
    const res = await pay({ billId: s.bills[0], amountCents: 2000, idempotencyKey: k });
    expect(res.statusCode).toBe(201);
    expect(res.headers['content-type']).toBe(JSON_TYPE);
    const body = res.json();
    expect(body).toEqual({
      payment: { id: expect.stringMatching(UUID), billId: s.bills[0], amountCents: 2000, idempotencyKey: k, createdAt: expect.stringMatching(ISO) },
      bill: { id: s.bills[0], totalCents: 2000, paidCents: 2000, balanceCents: 0, status: 'paid' },
      carriedForward: [],
    });
    expect(await getBill(s.bills[0]!)).toMatchObject({ totalCents: 2000, paidCents: 2000, balanceCents: 0, status: 'paid' });

    const list = await app.inject({ method: 'GET', url: `/v1/payments?billId=${s.bills[0]}`, headers: op });
    expect(list.statusCode).toBe(200);
    expect(list.json()).toEqual({ billId: s.bills[0], payments: [body.payment], credits: [] });
  });

  it('takes partial payments: open while not due, overdue past due, paid once the balance reaches zero', async () => {
    const s = await subscriberWithBills([1, 2]);
    let r = await pay({ billId: s.bills[1], amountCents: 500, idempotencyKey: key() });
    expect(r.statusCode).toBe(201);
    expect(r.json().bill).toEqual({ id: s.bills[1], totalCents: 2000, paidCents: 500, balanceCents: 1500, status: 'open' });
    r = await pay({ billId: s.bills[0], amountCents: 1, idempotencyKey: key() });
    expect(r.json().bill).toEqual({ id: s.bills[0], totalCents: 2000, paidCents: 1, balanceCents: 1999, status: 'overdue' });
    r = await pay({ billId: s.bills[1], amountCents: 1500, idempotencyKey: key() });
    expect(r.json().bill).toEqual({ id: s.bills[1], totalCents: 2000, paidCents: 2000, balanceCents: 0, status: 'paid' });
    const list = (await app.inject({ method: 'GET', url: `/v1/payments?billId=${s.bills[1]}`, headers: op })).json();
    expect(list.payments.map((p: { amountCents: number }) => p.amountCents)).toEqual([500, 1500]);
  });

  it('carries an overpayment to the next bill that owes; the move is listed on both bills', async () => {
    const s = await subscriberWithBills([0, 1, 2]);
    const r = await pay({ billId: s.bills[0], amountCents: 4700, idempotencyKey: key() });
    expect(r.statusCode).toBe(201);
    expect(r.json()).toMatchObject({
      bill: { id: s.bills[0], totalCents: 2000, paidCents: 2000, balanceCents: 0, status: 'paid' },
      carriedForward: [{ billId: s.bills[1], amountCents: 2000 }, { billId: s.bills[2], amountCents: 700 }],
    });
    expect(await getBill(s.bills[1]!)).toMatchObject({ paidCents: 2000, balanceCents: 0, status: 'paid' });
    expect(await getBill(s.bills[2]!)).toMatchObject({ paidCents: 700, balanceCents: 1300, status: 'open' });
    const onNext = (await app.inject({ method: 'GET', url: `/v1/payments?billId=${s.bills[2]}`, headers: op })).json();
    expect(onNext).toEqual({
      billId: s.bills[2], payments: [],
      credits: [{ fromBillId: s.bills[0], toBillId: s.bills[2], amountCents: 700, paymentId: r.json().payment.id, createdAt: expect.stringMatching(ISO) }],
    });
  });

  it('keeps the credit of an overpaid last bill (negative balance) and applies it to the next bill once issued', async () => {
    const s = await subscriberWithBills([0]);
    const r = await pay({ billId: s.bills[0], amountCents: 2500, idempotencyKey: key() });
    expect(r.json()).toMatchObject({ bill: { paidCents: 2500, balanceCents: -500, status: 'paid' }, carriedForward: [] });
    const next = await insertBill(db.pool, { subscriberId: s.id, ...NY_PERIODS[1] });
    // The billing run's afterBills hook.
    expect(await overdue.evaluateAndPublish()).toMatchObject({ creditMoves: 1 });
    expect(await getBill(s.bills[0]!)).toMatchObject({ paidCents: 2000, balanceCents: 0, status: 'paid' });
    expect(await getBill(next)).toMatchObject({ paidCents: 500, balanceCents: 1500, status: 'overdue' });
  });

  it('replays the same idempotency key with the same body: 200, the first answer, nothing new recorded', async () => {
    const s = await subscriberWithBills([2]);
    const body = { billId: s.bills[0], amountCents: 700, idempotencyKey: key() };
    const first = await pay(body);
    expect(first.statusCode).toBe(201);
    const second = await pay(body, processor);
    expect(second.statusCode).toBe(200);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(second.json()).toEqual(first.json());
    // A later payment does not change what the replay answers (the first result, not the current bill).
    await pay({ billId: s.bills[0], amountCents: 100, idempotencyKey: key() });
    expect((await pay(body)).json()).toEqual(first.json());
    const n = await db.pool.query(`SELECT count(*)::int AS n, sum(amount_cents)::int AS total FROM payments WHERE bill_id = $1`, [s.bills[0]]);
    expect(n.rows[0]).toEqual({ n: 2, total: 800 });
    expect(await getBill(s.bills[0]!)).toMatchObject({ paidCents: 800 });
  });

  it('refuses a used idempotency key with a different body: 409 naming idempotencyKey', async () => {
    const s = await subscriberWithBills([1, 2]);
    const k = key();
    expect((await pay({ billId: s.bills[0], amountCents: 700, idempotencyKey: k })).statusCode).toBe(201);
    for (const other of [{ billId: s.bills[0], amountCents: 701 }, { billId: s.bills[1], amountCents: 700 }]) {
      const r = await pay({ ...other, idempotencyKey: k });
      expect(r.statusCode).toBe(409);
      expect(r.json()).toEqual({ error: { code: 'IDEMPOTENCY_KEY_REUSED', message: 'idempotencyKey: already used for a payment with a different billId or amountCents', field: 'idempotencyKey' } });
    }
    expect(await getBill(s.bills[0]!)).toMatchObject({ paidCents: 700 });
    expect(await getBill(s.bills[1]!)).toMatchObject({ paidCents: 0 });
  });

  it('records one payment for concurrent identical requests, and every concurrent distinct payment exactly once', async () => {
    const s = await subscriberWithBills([1, 2]);
    const body = { billId: s.bills[1], amountCents: 300, idempotencyKey: key() };
    const answers = await Promise.all(Array.from({ length: 8 }, () => pay(body)));
    expect(answers.map((a) => a.statusCode).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 201]);
    expect(new Set(answers.map((a) => a.json().payment.id)).size).toBe(1);
    // Different keys on the same subscriber's two bills at once: the bill locks serialise them.
    const many = await Promise.all(Array.from({ length: 10 }, (_, i) => pay({ billId: s.bills[i % 2], amountCents: 100, idempotencyKey: key() })));
    expect(many.every((a) => a.statusCode === 201)).toBe(true);
    const rows = await db.pool.query(`SELECT bill_id, count(*)::int AS n, sum(amount_cents)::int AS cents FROM payments WHERE subscriber_id = $1 GROUP BY bill_id ORDER BY cents`, [s.id]);
    expect(rows.rows).toEqual([{ bill_id: s.bills[0], n: 5, cents: 500 }, { bill_id: s.bills[1], n: 6, cents: 800 }]);
    expect(await getBill(s.bills[0]!)).toMatchObject({ paidCents: 500 });
    expect(await getBill(s.bills[1]!)).toMatchObject({ paidCents: 800 });
  });

  it('answers 404 for an unknown bill, on payment and on listing', async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    const r = await pay({ billId: missing, amountCents: 100, idempotencyKey: key() });
    expect(r.statusCode).toBe(404);
    expect(r.json()).toEqual({ error: { code: 'BILL_NOT_FOUND', message: 'bill not found' } });
    const l = await app.inject({ method: 'GET', url: `/v1/payments?billId=${missing}`, headers: op });
    expect(l.statusCode).toBe(404);
    expect(l.json()).toEqual({ error: { code: 'BILL_NOT_FOUND', message: 'bill not found' } });
  });

  it('answers 400 naming the field for every bad input, and records nothing', async () => {
    const s = await subscriberWithBills([2]);
    const good = { billId: s.bills[0], amountCents: 100, idempotencyKey: 'k-400' };
    const cases: [unknown, string, string][] = [
      [{ amountCents: 100, idempotencyKey: 'k' }, 'billId', 'billId: is required'],
      [{ ...good, billId: 'not-a-uuid' }, 'billId', 'billId: must be a UUID'],
      [{ ...good, billId: 42 }, 'billId', 'billId: must be a UUID'],
      [{ billId: s.bills[0], idempotencyKey: 'k' }, 'amountCents', 'amountCents: is required'],
      [{ ...good, amountCents: 0 }, 'amountCents', 'amountCents: must be >= 1'],
      [{ ...good, amountCents: -5 }, 'amountCents', 'amountCents: must be >= 1'],
      [{ ...good, amountCents: 1.5 }, 'amountCents', 'amountCents: must be integer'],
      [{ ...good, amountCents: '500' }, 'amountCents', 'amountCents: must be an integer number of cents'],
      [{ ...good, amountCents: true }, 'amountCents', 'amountCents: must be an integer number of cents'],
      [{ ...good, amountCents: 10_000_000_001 }, 'amountCents', 'amountCents: must be <= 10000000000'],
      [{ billId: s.bills[0], amountCents: 100 }, 'idempotencyKey', 'idempotencyKey: is required'],
      [{ ...good, idempotencyKey: '' }, 'idempotencyKey', 'idempotencyKey: must NOT have fewer than 1 characters'],
      [{ ...good, idempotencyKey: 'x'.repeat(129) }, 'idempotencyKey', 'idempotencyKey: must NOT have more than 128 characters'],
      [{ ...good, idempotencyKey: 12 }, 'idempotencyKey', 'idempotencyKey: must be a string of 1 to 128 characters'],
      [{ ...good, currency: 'USD' }, 'currency', 'currency: is not a known field'],
    ];
    for (const [body, field, message] of cases) {
      const r = await pay(body);
      expect({ status: r.statusCode, body: r.json() }).toEqual({ status: 400, body: { error: { code: 'INVALID_ARGUMENT', message, field } } });
    }
    expect((await app.inject({ method: 'GET', url: '/v1/payments', headers: op })).json()).toEqual({ error: { code: 'INVALID_ARGUMENT', message: 'billId: is required', field: 'billId' } });
    expect((await app.inject({ method: 'GET', url: '/v1/payments?billId=x', headers: op })).json()).toEqual({ error: { code: 'INVALID_ARGUMENT', message: 'billId: must be a UUID', field: 'billId' } });
    const n = await db.pool.query(`SELECT count(*)::int AS n FROM payments WHERE bill_id = $1`, [s.bills[0]]);
    expect(n.rows[0].n).toBe(0);
  });

  it('lets operators and payment processors pay, operators alone list; subscribers are refused and anonymous callers unauthenticated', async () => {
    const s = await subscriberWithBills([2]);
    const sub = bearer(await token('subscriber', s.id));
    const body = { billId: s.bills[0], amountCents: 100, idempotencyKey: key() };
    const refused = { error: { code: 'FORBIDDEN', message: 'this route is for operators and payment processors' } };
    const r1 = await pay(body, sub);
    expect({ status: r1.statusCode, body: r1.json() }).toEqual({ status: 403, body: refused });
    expect((await pay(body, {})).statusCode).toBe(401);
    expect((await pay(body, processor)).statusCode).toBe(201);
    const l1 = await app.inject({ method: 'GET', url: `/v1/payments?billId=${s.bills[0]}`, headers: processor });
    expect({ status: l1.statusCode, body: l1.json() }).toEqual({ status: 403, body: { error: { code: 'FORBIDDEN', message: 'this route is for operators' } } });
    expect((await app.inject({ method: 'GET', url: `/v1/payments?billId=${s.bills[0]}`, headers: sub })).statusCode).toBe(403);
    expect((await app.inject({ method: 'GET', url: `/v1/payments?billId=${s.bills[0]}`, headers: op })).statusCode).toBe(200);
  });
});

describe('payments and the blocked set in Redis', () => {
  it('a payment that clears the blocking debt unblocks the subscriber in Redis before the response returns', async () => {
    const s = await subscriberWithBills([0, 1]);
    await overdue.evaluateAndPublish();
    const blockedKey = redisKeys(prefix).blocked(bucketOf(s.phone));
    expect(await admin.sismember(blockedKey, s.phone)).toBe(1);
    const changes = await listen(SHARED_REDIS_URL, prefix);
    try {
      // Paying one of two overdue bills leaves the subscriber blocked.
      expect((await pay({ billId: s.bills[1], amountCents: 2000, idempotencyKey: key() })).json().bill.status).toBe('paid');
      expect(await admin.sismember(blockedKey, s.phone)).toBe(1);
      const r = await pay({ billId: s.bills[0], amountCents: 2000, idempotencyKey: key() });
      expect(r.statusCode).toBe(201);
      // Read right after the answer: no waiting, no sweep.
      expect(await admin.sismember(blockedKey, s.phone)).toBe(0);
      await changes.waitFor((m) => m === `unblock ${s.phone}`, 2000);
      expect(changes.messages.filter((m) => m.endsWith(s.phone))).toEqual([`unblock ${s.phone}`]);
    } finally {
      await changes.close();
    }
    expect(await readSet(admin, prefix, 'blocked')).not.toContain(s.phone);
  });

  it('paying only the pay-per-call part leaves the subscriber blocked; paying the rest unblocks', async () => {
    const lines = [
      { kind: 'monthly_service', description: 'Monthly service', calls: 0, billableSeconds: 0, amountCents: 2000 },
      { kind: 'premium', description: 'Premium', calls: 1, billableSeconds: 60, amountCents: 199 },
    ];
    const s = await subscriberWithBills([1], [{ lines }]);
    await overdue.evaluateAndPublish();
    const blockedKey = redisKeys(prefix).blocked(bucketOf(s.phone));
    expect(await admin.sismember(blockedKey, s.phone)).toBe(1);
    // 199 cents cover non-premium charges first: 1801 of the monthly charge still blocks.
    expect((await pay({ billId: s.bills[0], amountCents: 199, idempotencyKey: key() })).json().bill).toMatchObject({ balanceCents: 2000, status: 'overdue' });
    expect(await admin.sismember(blockedKey, s.phone)).toBe(1);
    // 1801 more: the monthly charge is paid, only the 900 charge (199) is unpaid → overdue, not blocked.
    expect((await pay({ billId: s.bills[0], amountCents: 1801, idempotencyKey: key() })).json().bill).toMatchObject({ balanceCents: 199, status: 'overdue' });
    expect(await admin.sismember(blockedKey, s.phone)).toBe(0);
  });
});
