/** Shared set-up for billing API tests: a real PostgreSQL, a fixed clock, dev tokens. */
import { SignJWT, UnsecuredJWT } from 'jose';
import type { FastifyInstance } from 'fastify';
import { fixedClock } from '../../core/clock.ts';
import { silentLogger, type Logger } from '../../core/log.ts';
import { createTokenVerifier, signDevToken, type Role } from '../auth/index.ts';
import { buildBillingApp, type BillingAppOptions } from '../transport/http/index.ts';
import type { FreshPostgres } from '../../test/pg.ts';

export const SECRET = 'test-secret-0123456789-abcdefghijklmnop';
export const ISSUER = 'phonebill';
export const AUDIENCE = 'phonebill-api';
export const NOW = '2024-05-01T12:00:00Z';

export function makeApp(db: FreshPostgres, extra: Partial<BillingAppOptions> & { log?: Logger } = {}) {
  const clock = fixedClock(NOW);
  const auth = createTokenVerifier({ secret: SECRET, issuer: ISSUER, audience: AUDIENCE, clock });
  const app = buildBillingApp({ pool: db.pool, log: extra.log ?? silentLogger(), clock, auth, ...extra });
  return { app, clock };
}

export const token = (role: Role, sub?: string, o: { ttlSeconds?: number; now?: number } = {}) =>
  signDevToken({ secret: SECRET, issuer: ISSUER, audience: AUDIENCE, role, sub, ttlSeconds: o.ttlSeconds ?? 3600, now: o.now ?? Date.parse(NOW) });

export const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

/** Tokens that must all be refused, each with the code it must be refused with. */
export async function badTokens(sub: string): Promise<{ name: string; header?: string; code: string; message: string }[]> {
  const now = Math.floor(Date.parse(NOW) / 1000);
  const enc = new TextEncoder();
  const sign = (claims: Record<string, unknown>, o: { iss?: string; aud?: string; exp?: number | null; secret?: string } = {}) => {
    const j = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuer(o.iss ?? ISSUER).setAudience(o.aud ?? AUDIENCE).setIssuedAt(now - 60);
    if (o.exp !== null) j.setExpirationTime(o.exp ?? now + 3600);
    return j.sign(enc.encode(o.secret ?? SECRET));
  };
  const good = await sign({ role: 'subscriber', sub });
  const [h, , s] = good.split('.');
  const tamperedPayload = Buffer.from(JSON.stringify({ role: 'operator', sub, iss: ISSUER, aud: AUDIENCE, iat: now - 60, exp: now + 3600 })).toString('base64url');
  const algNone = new UnsecuredJWT({ role: 'operator' }).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt(now - 60).setExpirationTime(now + 3600).encode();
  const invalid = { code: 'TOKEN_INVALID', message: 'invalid token' };
  return [
    { name: 'no token', code: 'TOKEN_MISSING', message: 'missing Authorization: Bearer <token>' },
    { name: 'not a Bearer header', header: `Basic ${Buffer.from('a:b').toString('base64')}`, code: 'TOKEN_INVALID', message: 'Authorization must be "Bearer <token>"' },
    { name: 'garbage', header: 'Bearer not.a.jwt', ...invalid },
    { name: 'expired', header: `Bearer ${await sign({ role: 'operator' }, { exp: now - 3600 })}`, code: 'TOKEN_EXPIRED', message: 'token expired' },
    { name: 'tampered payload (subscriber made operator)', header: `Bearer ${h}.${tamperedPayload}.${s}`, ...invalid },
    { name: 'alg none', header: `Bearer ${algNone}`, ...invalid },
    { name: 'wrong issuer', header: `Bearer ${await sign({ role: 'operator' }, { iss: 'someone-else' })}`, ...invalid },
    { name: 'wrong audience', header: `Bearer ${await sign({ role: 'operator' }, { aud: 'another-api' })}`, ...invalid },
    { name: 'wrong secret', header: `Bearer ${await sign({ role: 'operator' }, { secret: 'x'.repeat(40) })}`, ...invalid },
    { name: 'no exp', header: `Bearer ${await sign({ role: 'operator' }, { exp: null })}`, ...invalid },
    { name: 'unknown role', header: `Bearer ${await sign({ role: 'admin' })}`, code: 'TOKEN_INVALID', message: 'token claim role must be one of operator, subscriber, payments' },
    { name: 'subscriber without sub', header: `Bearer ${await sign({ role: 'subscriber' })}`, code: 'TOKEN_INVALID', message: 'a subscriber token must carry the subscriber id (a UUID) in sub' },
  ];
}

export type App = FastifyInstance;
