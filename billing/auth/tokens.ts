/** Development tokens signed with JWT_SECRET (HS256): `phonebill token`, the demo and tests. */
import { SignJWT } from 'jose';
import type { Role } from './principal.ts';

export interface DevTokenOptions {
  secret: string;
  issuer: string;
  audience: string;
  role: Role;
  /** The subscriber id for role 'subscriber'. */
  sub?: string;
  /** Lifetime in seconds. */
  ttlSeconds: number;
  /** Issue time in ms since the epoch (the injected clock's now). */
  now: number;
}

export function signDevToken(o: DevTokenOptions): Promise<string> {
  if (o.role === 'subscriber' && !o.sub) throw new Error('a subscriber token needs the subscriber id');
  const iat = Math.floor(o.now / 1000);
  const jwt = new SignJWT({ role: o.role })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer(o.issuer)
    .setAudience(o.audience)
    .setIssuedAt(iat)
    .setExpirationTime(iat + o.ttlSeconds);
  if (o.sub) jwt.setSubject(o.sub);
  return jwt.sign(new TextEncoder().encode(o.secret));
}

/** Parses a lifetime such as 90s, 15m, 1h, 7d (or bare seconds). */
export function parseTtl(s: string): number {
  const m = /^(\d+)\s*(s|m|h|d)?$/.exec(s.trim());
  if (!m) throw new Error(`--ttl must be a duration such as 15m, 1h or 7d, got ${JSON.stringify(s)}`);
  const n = Number(m[1]) * ({ s: 1, m: 60, h: 3600, d: 86400 } as Record<string, number>)[m[2] ?? 's']!;
  if (n <= 0) throw new Error('--ttl must be positive');
  return n;
}
