/** startBillingApi: a real listening server (port 0) configured from the config module. */
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config.ts';
import { systemClock } from '../../core/clock.ts';
import { silentLogger } from '../../core/log.ts';
import { freshPostgres, type FreshPostgres } from '../../test/pg.ts';
import { signDevToken } from '../auth/index.ts';
import { startBillingApi, type BillingApi } from '../transport/http/index.ts';
import { insertSubscriber } from './pg-fixtures.ts';

let db: FreshPostgres | undefined;
let api: BillingApi | undefined;
afterEach(async () => { await api?.close(); api = undefined; await db?.close(); db = undefined; });

const SECRET = 'server-secret-0123456789-abcdefghijklmn';

describe('startBillingApi', () => {
  it('listens, verifies tokens with the configured secret, issuer and audience', async () => {
    db = await freshPostgres();
    const config = loadConfig({ DATABASE_URL: db.url, JWT_SECRET: SECRET, JWT_ISSUER: 'acme', JWT_AUDIENCE: 'acme-billing' });
    api = await startBillingApi({ pool: db.pool, config, log: silentLogger(), clock: systemClock, port: 0 });
    expect(api.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await fetch(`${api.url}/healthz`);
    expect([health.status, await health.json()]).toEqual([200, { status: 'ok' }]);

    const alice = await insertSubscriber(db.pool, { phoneNumber: '+12025550100' });
    const sign = (issuer: string) => signDevToken({ secret: SECRET, issuer, audience: 'acme-billing', role: 'subscriber', sub: alice, ttlSeconds: 60, now: Date.now() });
    const ok = await fetch(`${api.url}/v1/bills`, { headers: { authorization: `Bearer ${await sign('acme')}` } });
    expect([ok.status, ok.headers.get('content-type'), await ok.json()]).toEqual([200, 'application/json; charset=utf-8', { bills: [], nextCursor: null }]);
    const wrong = await fetch(`${api.url}/v1/bills`, { headers: { authorization: `Bearer ${await sign('phonebill')}` } });
    expect([wrong.status, await wrong.json()]).toEqual([401, { error: { code: 'TOKEN_INVALID', message: 'invalid token' } }]);
  });

  it('refuses to start when no way to verify tokens is configured', async () => {
    db = await freshPostgres();
    const config = loadConfig({ DATABASE_URL: db.url });
    await expect(startBillingApi({ pool: db.pool, config, log: silentLogger(), clock: systemClock, port: 0 }))
      .rejects.toThrow('API tokens cannot be verified: set JWT_JWKS_URL or JWT_PUBLIC_KEY (production) or JWT_SECRET (development)');
  });
});
