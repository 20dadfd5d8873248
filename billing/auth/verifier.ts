/**
 * API token verification with jose. One key source is configured: a JWKS URL
 * or a PEM public key in production, an HS256 secret in development. The
 * algorithm allow-list follows that key (never HS* beside a public key, never
 * `none`), and issuer, audience and expiry are always required.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { DomainError } from '../../core/errors.ts';
import type { Clock } from '../../core/clock.ts';
import type { Logger } from '../../core/log.ts';
import { ROLES, UUID_RE, type Principal, type Role } from './principal.ts';

export interface TokenVerifier {
  /** Resolves to the caller, or throws DomainError kind 'unauthenticated'. */
  verify(token: string): Promise<Principal>;
  /** Algorithms accepted, for the logs and the docs. */
  readonly algorithms: readonly string[];
}

export interface VerifierOptions {
  issuer: string;
  audience: string;
  clock: Clock;
  /** Exactly one of these three. */
  secret?: string;
  publicKeyPem?: string;
  jwksUrl?: string;
  /** Tolerated clock skew when checking exp/nbf, in seconds (default 5). */
  clockToleranceSeconds?: number;
  log?: Logger;
}

const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

function algorithmsForKey(key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa': return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss': return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      const alg = ({ prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' } as Record<string, string>)[curve ?? ''];
      if (!alg) throw new Error(`JWT_PUBLIC_KEY: unsupported EC curve ${curve}`);
      return [alg];
    }
    case 'ed25519': return ['EdDSA'];
    default: throw new Error(`JWT_PUBLIC_KEY: unsupported key type ${key.asymmetricKeyType}`);
  }
}

export const unauthenticated = (code: 'TOKEN_MISSING' | 'TOKEN_INVALID' | 'TOKEN_EXPIRED', message: string) =>
  new DomainError('unauthenticated', code, message);

function principalOf(payload: JWTPayload): Principal {
  const role = payload.role;
  if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) {
    throw unauthenticated('TOKEN_INVALID', `token claim role must be one of ${ROLES.join(', ')}`);
  }
  if ((role as Role) === 'subscriber') {
    if (typeof payload.sub !== 'string' || !UUID_RE.test(payload.sub)) {
      throw unauthenticated('TOKEN_INVALID', 'a subscriber token must carry the subscriber id (a UUID) in sub');
    }
    return { role: 'subscriber', subscriberId: payload.sub.toLowerCase() };
  }
  return typeof payload.sub === 'string' ? { role: role as 'operator' | 'payments', tokenSubject: payload.sub } : { role: role as 'operator' | 'payments' };
}

export function createTokenVerifier(opts: VerifierOptions): TokenVerifier {
  const sources = [opts.secret && 'JWT_SECRET', opts.publicKeyPem && 'JWT_PUBLIC_KEY', opts.jwksUrl && 'JWT_JWKS_URL'].filter(Boolean);
  if (sources.length !== 1) {
    throw new Error(sources.length === 0
      ? 'API tokens cannot be verified: set JWT_JWKS_URL or JWT_PUBLIC_KEY (production) or JWT_SECRET (development)'
      : `set only one of JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_URL (got ${sources.join(', ')})`);
  }
  let key: Uint8Array | KeyObject | JWTVerifyGetKey;
  let algorithms: string[];
  if (opts.jwksUrl) {
    key = createRemoteJWKSet(new URL(opts.jwksUrl));
    algorithms = ASYMMETRIC;
  } else if (opts.publicKeyPem) {
    const k = createPublicKey(opts.publicKeyPem);
    algorithms = algorithmsForKey(k);
    key = k;
  } else {
    key = new TextEncoder().encode(opts.secret);
    algorithms = ['HS256'];
  }
  const tolerance = opts.clockToleranceSeconds ?? 5;

  return {
    algorithms,
    async verify(token) {
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, key as Uint8Array, {
          algorithms,
          issuer: opts.issuer,
          audience: opts.audience,
          requiredClaims: ['exp'],
          clockTolerance: tolerance,
          currentDate: new Date(opts.clock.now()),
        }));
      } catch (e) {
        if (e instanceof joseErrors.JWTExpired) throw unauthenticated('TOKEN_EXPIRED', 'token expired');
        // The identity provider's key set not answering is ours to fix, not the caller's.
        if (opts.jwksUrl && (e instanceof joseErrors.JWKSTimeout || !(e instanceof joseErrors.JOSEError))) {
          throw new DomainError('unavailable', 'AUTH_UNAVAILABLE', 'token keys could not be fetched', { cause: e });
        }
        // Why a token was refused is logged for operators, never told to the caller.
        opts.log?.info({ reason: (e as { code?: string }).code ?? (e as Error).message }, 'token refused');
        throw unauthenticated('TOKEN_INVALID', 'invalid token');
      }
      return principalOf(payload);
    },
  };
}
