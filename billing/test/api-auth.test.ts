/**
 * Auth on every billing route: no token, expired, tampered, alg none, wrong
 * issuer/audience/secret are refused; a subscriber reaches only their own
 * bills (another's is a 404 identical to a missing bill); operators reach
 * everything meant for them. Also the production key sources (PEM, JWKS).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { freshPostgres, type FreshPostgres } from '../../test/pg.ts';
import { fixedClock } from '../../core/clock.ts';
import { createTokenVerifier } from '../auth/index.ts';
import { AUDIENCE, badTokens, bearer, ISSUER, makeApp, NOW, token, type App } from './api-helpers.ts';
import { insertBill, insertSubscriber, NY_PERIODS } from './pg-fixtures.ts';

let db: FreshPostgres;
let app: App;
let alice: string;
let bob: string;
let aliceBill: string;
const MISSING = '00000000-0000-4000-8000-000000000000';
const calls: unknown[] = [];

beforeAll(async () => {
  db = await freshPostgres();
  alice = await insertSubscriber(db.pool, { phoneNumber: '+12025550100' });
  bob = await insertSubscriber(db.pool, { phoneNumber: '+12025550101' });
  aliceBill = await insertBill(db.pool, { subscriberId: alice, ...NY_PERIODS[0] });
  await insertBill(db.pool, { subscriberId: bob, ...NY_PERIODS[0] });
  ({ app } = makeApp(db, {
    runBilling: async ({ asOf }) => ({ runId: 'r1', asOf: asOf.toISOString(), billsCreated: 0 }),
    listBillCalls: async (bill, page) => { calls.push({ bill: bill.id, page }); return { calls: [], nextCursor: null }; },
  }));
});
afterAll(async () => { await app?.close(); await db?.close(); });

type Route = { method: 'GET' | 'POST'; path: string; url: () => string; payload?: object; roles: ('operator' | 'subscriber')[] };
const ROUTES: Route[] = [
  { method: 'POST', path: '/v1/subscribers', url: () => '/v1/subscribers', payload: { phoneNumber: '+13125550100', subscriptionDate: '2024-01-31', timeZone: 'America/Chicago' }, roles: ['operator'] },
  { method: 'GET', path: '/v1/subscribers/{id}', url: () => `/v1/subscribers/${alice}`, roles: ['operator'] },
  { method: 'GET', path: '/v1/subscribers/{id}/bills', url: () => `/v1/subscribers/${alice}/bills`, roles: ['operator'] },
  { method: 'POST', path: '/v1/billing-runs', url: () => '/v1/billing-runs', payload: { asOf: '2024-05-01T00:00:00Z' }, roles: ['operator'] },
  { method: 'GET', path: '/v1/bills', url: () => '/v1/bills', roles: ['subscriber'] },
  { method: 'GET', path: '/v1/bills/{billId}', url: () => `/v1/bills/${aliceBill}`, roles: ['subscriber', 'operator'] },
  { method: 'GET', path: '/v1/bills/{billId}/calls', url: () => `/v1/bills/${aliceBill}/calls`, roles: ['subscriber', 'operator'] },
];
const name = (r: Route) => `${r.method} ${r.path}`;

describe('every route refuses bad tokens with 401 and the exact error', () => {
  for (const r of ROUTES) {
    it(name(r), async () => {
      for (const t of await badTokens(alice)) {
        const res = await app.inject({ method: r.method, url: r.url(), payload: r.payload, headers: t.header ? { authorization: t.header } : {} });
        expect({ case: t.name, status: res.statusCode }).toEqual({ case: t.name, status: 401 });
        expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
        expect(res.headers['www-authenticate']).toBe('Bearer realm="phonebill", error="invalid_token"');
        expect({ case: t.name, body: res.json() }).toEqual({ case: t.name, body: { error: { code: t.code, message: t.message } } });
      }
    });
  }
  it('an unknown route asks for a token before saying it does not exist', async () => {
    expect((await app.inject({ method: 'GET', url: '/v1/nothing' })).statusCode).toBe(401);
    const res = await app.inject({ method: 'GET', url: '/v1/nothing', headers: bearer(await token('operator')) });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: 'ROUTE_NOT_FOUND', message: 'no route GET /v1/nothing' } });
  });
  it('health and the static page need no token', async () => {
    const h = await app.inject({ method: 'GET', url: '/healthz' });
    expect([h.statusCode, h.headers['content-type'], h.json()]).toEqual([200, 'application/json; charset=utf-8', { status: 'ok' }]);
    const page = await app.inject({ method: 'GET', url: '/' });
    expect([page.statusCode, page.headers['content-type']]).toEqual([200, 'text/html; charset=utf-8']);
    expect(page.headers['content-security-policy']).toContain("connect-src 'self'");
    expect(page.body).toContain('<title>phonebill — my bills</title>');
  });
});

describe('roles', () => {
  for (const r of ROUTES) {
    it(`${name(r)}: allowed for ${r.roles.join(', ')} only`, async () => {
      const tokens = { operator: await token('operator'), subscriber: await token('subscriber', alice) };
      for (const role of ['operator', 'subscriber'] as const) {
        const res = await app.inject({ method: r.method, url: r.url(), payload: r.payload, headers: bearer(tokens[role]) });
        if (r.roles.includes(role)) {
          expect({ role, status: res.statusCode }).toEqual({ role, status: r.path === '/v1/subscribers' ? 201 : 200 });
        } else {
          const who = r.roles.map((x) => ({ operator: 'operators', subscriber: 'subscribers' })[x]).join(' and ');
          expect({ role, status: res.statusCode, body: res.json() }).toEqual({ role, status: 403, body: { error: { code: 'FORBIDDEN', message: `this route is for ${who}` } } });
        }
      }
    });
  }
  it('a payments token reaches none of the billing routes', async () => {
    const t = await token('payments');
    for (const r of ROUTES) {
      const res = await app.inject({ method: r.method, url: r.url(), payload: r.payload, headers: bearer(t) });
      expect({ route: name(r), status: res.statusCode }).toEqual({ route: name(r), status: 403 });
    }
  });
});

describe('subscriber scope comes from the token alone', () => {
  it("another subscriber's bill answers exactly like a missing bill", async () => {
    const asBob = bearer(await token('subscriber', bob));
    for (const suffix of ['', '/calls']) {
      const other = await app.inject({ method: 'GET', url: `/v1/bills/${aliceBill}${suffix}`, headers: asBob });
      const missing = await app.inject({ method: 'GET', url: `/v1/bills/${MISSING}${suffix}`, headers: asBob });
      expect(other.statusCode).toBe(404);
      expect(other.headers['content-type']).toBe(missing.headers['content-type']);
      expect(other.body).toBe(missing.body);
      expect(other.json()).toEqual({ error: { code: 'BILL_NOT_FOUND', message: 'bill not found' } });
    }
  });
  it('GET /v1/bills lists only the caller\'s bills; query parameters cannot widen it', async () => {
    const res = await app.inject({ method: 'GET', url: `/v1/bills?subscriberId=${alice}`, headers: bearer(await token('subscriber', bob)) });
    expect(res.statusCode).toBe(200);
    expect(res.json().bills.map((b: { subscriberId: string }) => b.subscriberId)).toEqual([bob]);
  });
  it('the operator reads any bill', async () => {
    const res = await app.inject({ method: 'GET', url: `/v1/bills/${aliceBill}`, headers: bearer(await token('operator')) });
    expect([res.statusCode, res.json().subscriberId]).toEqual([200, alice]);
  });
});

describe('production key sources', () => {
  const clock = fixedClock(NOW);
  const now = Math.floor(Date.parse(NOW) / 1000);
  const claims = { role: 'operator' };
  const signWith = (key: Parameters<SignJWT['sign']>[0], alg: string, kid?: string) =>
    new SignJWT(claims).setProtectedHeader(kid ? { alg, kid } : { alg }).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt(now).setExpirationTime(now + 600).sign(key);

  it('a PEM public key accepts its own algorithm and refuses HS256 signed with the PEM text (key confusion)', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
    const pem = await exportSPKI(publicKey);
    const v = createTokenVerifier({ publicKeyPem: pem, issuer: ISSUER, audience: AUDIENCE, clock });
    expect(v.algorithms).toEqual(['ES256']);
    expect(await v.verify(await signWith(privateKey, 'ES256'))).toEqual({ role: 'operator' });
    await expect(v.verify(await signWith(new TextEncoder().encode(pem), 'HS256'))).rejects.toMatchObject({ code: 'TOKEN_INVALID' });
  });

  it('a JWKS URL verifies by kid; an unknown key is refused; an unreachable JWKS is 503-worthy, not 401', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const other = await generateKeyPair('RS256', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    const server = http.createServer((_req, res) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ keys: [jwk] })); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
    try {
      const v = createTokenVerifier({ jwksUrl: url, issuer: ISSUER, audience: AUDIENCE, clock });
      expect(await v.verify(await signWith(privateKey, 'RS256', 'k1'))).toEqual({ role: 'operator' });
      await expect(v.verify(await signWith(other.privateKey, 'RS256', 'k2'))).rejects.toMatchObject({ code: 'TOKEN_INVALID' });
      await expect(v.verify(await signWith(new TextEncoder().encode('x'.repeat(40)), 'HS256'))).rejects.toMatchObject({ code: 'TOKEN_INVALID' });
    } finally {
      await new Promise((r) => server.close(r));
    }
    const down = createTokenVerifier({ jwksUrl: url, issuer: ISSUER, audience: AUDIENCE, clock });
    await expect(down.verify(await signWith(privateKey, 'RS256', 'k1'))).rejects.toMatchObject({ kind: 'unavailable', code: 'AUTH_UNAVAILABLE' });
  });

  it('exactly one key source must be configured', () => {
    expect(() => createTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, clock }))
      .toThrow('API tokens cannot be verified: set JWT_JWKS_URL or JWT_PUBLIC_KEY (production) or JWT_SECRET (development)');
    expect(() => createTokenVerifier({ secret: 'x'.repeat(40), jwksUrl: 'https://idp.example/jwks', issuer: ISSUER, audience: AUDIENCE, clock }))
      .toThrow('set only one of JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_URL (got JWT_SECRET, JWT_JWKS_URL)');
  });
});
