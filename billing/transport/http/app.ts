/**
 * buildBillingApp(opts) returns the fastify app, routes registered, not
 * listening (tests drive it with app.inject(); server.ts listens).
 */
import fs from 'node:fs';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Clock } from '../../../core/clock.ts';
import type { Config } from '../../../core/config.ts';
import type { Logger } from '../../../core/log.ts';
import type { Pool } from '../../../core/postgres/index.ts';
import { createBillRepository, createPaymentRepository, createSubscriberRepository, type RecordedPayment, type Subscriber } from '../../adapters/postgres/index.ts';
import type { TokenVerifier } from '../../auth/index.ts';
import { createBillReader } from '../../bills/index.ts';
import { createPaymentService } from '../../payments/index.ts';
import { createSubscriberService, type SubscriberRules } from '../../subscribers/index.ts';
import { registerAuth } from './auth.ts';
import { errorBody, errorHandler, sendError } from './errors.ts';
import { registerPaymentRoutes } from './payment-routes.ts';
import { registerRoutes, type ListBillCalls, type RunBilling } from './routes.ts';

export interface BillingAppOptions {
  pool: Pool;
  config?: Partial<Config>;
  log: Logger;
  clock: Clock;
  auth: TokenVerifier;
  /** The billing run behind POST /v1/billing-runs; absent: 503. */
  runBilling?: RunBilling;
  /** Itemized calls behind GET /v1/bills/{id}/calls; absent: 503. */
  listBillCalls?: ListBillCalls;
  /** Awaited before POST /v1/subscribers answers (admission publishes the new number). */
  onSubscriberCreated?: (s: Subscriber) => Promise<void>;
  /** Awaited before POST /v1/payments answers, replays too (overdue publishes the payer's blocked state); must not throw. */
  onPaymentRecorded?: (r: RecordedPayment) => Promise<void>;
  /** Plans accepted for new subscribers (default: the tariff file's plans). */
  subscriberRules?: SubscriberRules;
}

const PAGE = fs.readFileSync(new URL('./web/index.html', import.meta.url), 'utf8');
// The page only talks to this API and holds the token in sessionStorage.
const PAGE_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function buildBillingApp(opts: BillingAppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.log,
    bodyLimit: 64 * 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
  }) as unknown as FastifyInstance;

  const subscribers = createSubscriberRepository(opts.pool);
  const bills = createBillRepository(opts.pool);

  // JSON only: anything else is a 415 rather than a string the schema then refuses.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => sendError(reply, 404, errorBody('ROUTE_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`)));
  registerAuth(app, opts.auth);

  app.get('/healthz', { config: { public: true } }, async (_req, reply) => {
    try {
      await opts.pool.query('SELECT 1');
      return { status: 'ok' };
    } catch {
      return reply.code(503).send({ status: 'unavailable', reason: 'database unreachable' });
    }
  });

  app.get('/', { config: { public: true } }, async (_req, reply) =>
    reply.type('text/html; charset=utf-8').header('content-security-policy', PAGE_CSP).header('cache-control', 'no-cache').send(PAGE));

  registerRoutes(app, {
    subscribers: createSubscriberService({ repo: subscribers, rules: opts.subscriberRules, log: opts.log, onCreated: opts.onSubscriberCreated }),
    bills: createBillReader({ bills, subscribers }),
    clock: opts.clock,
    runBilling: opts.runBilling,
    listBillCalls: opts.listBillCalls,
  });
  registerPaymentRoutes(app, createPaymentService({
    repo: createPaymentRepository(opts.pool), clock: opts.clock, log: opts.log,
    ...(opts.onPaymentRecorded ? { onRecorded: opts.onPaymentRecorded } : {}),
  }));
  return app;
}
