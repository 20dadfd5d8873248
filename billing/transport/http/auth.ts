/**
 * Bearer-token auth for every route unless it is marked `config: { public: true }`
 * (health, the static page): unknown routes too, so the API's shape is not
 * revealed to anonymous callers. Runs in onRequest, before body parsing and
 * validation, so an anonymous caller learns nothing about inputs either.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DomainError } from '../../../core/errors.ts';
import { unauthenticated, type Principal, type Role, type TokenVerifier } from '../../auth/index.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** Roles allowed on the route; absent: any authenticated caller. */
    roles?: readonly Role[];
    /** No token needed. */
    public?: boolean;
  }
}

const ROLE_NAMES: Record<Role, string> = { operator: 'operators', subscriber: 'subscribers', payments: 'payment processors' };

export function registerAuth(app: FastifyInstance, verifier: TokenVerifier): void {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (req: FastifyRequest) => {
    const config = req.routeOptions.config;
    if (config?.public) return;
    const header = req.headers.authorization;
    if (!header) throw unauthenticated('TOKEN_MISSING', 'missing Authorization: Bearer <token>');
    const m = /^Bearer +([^\s]+) *$/i.exec(header);
    if (!m) throw unauthenticated('TOKEN_INVALID', 'Authorization must be "Bearer <token>"');
    const principal = await verifier.verify(m[1]!);
    req.principal = principal;
    if (principal.role === 'subscriber') req.log = req.log.child({ subscriberId: principal.subscriberId });
    const roles = config?.roles;
    if (roles && !roles.includes(principal.role)) {
      throw new DomainError('forbidden', 'FORBIDDEN', `this route is for ${roles.map((r) => ROLE_NAMES[r]).join(' and ')}`);
    }
  });
}

/** The principal of an authenticated route (the hook guarantees it). */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new Error('route reached without a verified principal');
  return req.principal;
}
