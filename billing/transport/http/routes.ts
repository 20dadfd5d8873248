/** Routes: decode (JSON schema), call a service, shape the answer. No rules live here. */
import type { FastifyInstance } from 'fastify';
import { DomainError, unavailable } from '../../../core/errors.ts';
import type { Clock } from '../../../core/clock.ts';
import type { Bill } from '../../adapters/postgres/index.ts';
import type { BillReader, BillScope } from '../../bills/index.ts';
import type { SubscriberService } from '../../subscribers/index.ts';
import { principalOf } from './auth.ts';
import { billSummaryView, billView, subscriberView } from './views.ts';

/** Summary of one billing run; `billsCreated` is required, the rest is passed through as JSON. */
export interface BillingRunSummary { billsCreated: number; [k: string]: unknown }
export type RunBilling = (opts: { asOf: Date }) => Promise<BillingRunSummary>;

/** One page of a bill's itemized calls (the lead's ClickHouse query). */
export interface BillCallsPage { calls: Record<string, unknown>[]; nextCursor: string | null }
export type ListBillCalls = (bill: Bill, page: { limit: number; cursor?: string }) => Promise<BillCallsPage>;

export interface RouteDeps {
  subscribers: SubscriberService;
  bills: BillReader;
  clock: Clock;
  runBilling?: RunBilling;
  listBillCalls?: ListBillCalls;
}

const uuid = { type: 'string', format: 'uuid' } as const;
const idParams = (name: string) => ({ type: 'object', required: [name], properties: { [name]: uuid } }) as const;
const pageQuery = (max: number, def: number) => ({
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: max, default: def },
    cursor: { type: 'string', minLength: 1, maxLength: 512 },
  },
}) as const;

type Page = { limit: number; cursor?: string };
const lower = (s: string) => s.toLowerCase();

export function registerRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const operator = { roles: ['operator'] } as const;
  const readers = { roles: ['operator', 'subscriber'] } as const;

  const scopeOf = (req: Parameters<typeof principalOf>[0]): BillScope => {
    const p = principalOf(req);
    return p.role === 'subscriber' ? { subscriberId: p.subscriberId } : 'all';
  };

  app.post<{ Body: { phoneNumber: string; subscriptionDate: string; timeZone: string; plan?: string } }>('/v1/subscribers', {
    config: operator,
    schema: {
      body: {
        type: 'object',
        required: ['phoneNumber', 'subscriptionDate', 'timeZone'],
        additionalProperties: false,
        properties: {
          phoneNumber: { type: 'string', minLength: 1, maxLength: 32 },
          subscriptionDate: { type: 'string', minLength: 1, maxLength: 32 },
          timeZone: { type: 'string', minLength: 1, maxLength: 64 },
          plan: { type: 'string', minLength: 1, maxLength: 64 },
        },
      },
    },
  }, async (req, reply) => {
    const s = await deps.subscribers.create(req.body);
    return reply.code(201).header('location', `/v1/subscribers/${s.id}`).send(subscriberView(s));
  });

  app.get<{ Params: { id: string } }>('/v1/subscribers/:id', { config: operator, schema: { params: idParams('id') } },
    async (req) => subscriberView(await deps.subscribers.get(lower(req.params.id))));

  app.get<{ Params: { id: string }; Querystring: Page }>('/v1/subscribers/:id/bills', {
    config: operator, schema: { params: idParams('id'), querystring: pageQuery(100, 20) },
  }, async (req) => {
    const page = await deps.bills.listForKnownSubscriber(lower(req.params.id), req.query);
    return { bills: page.bills.map(billSummaryView), nextCursor: page.nextCursor };
  });

  app.post<{ Body: { asOf?: string } | undefined }>('/v1/billing-runs', {
    config: operator,
    schema: {
      body: { type: ['object', 'null'], additionalProperties: false, properties: { asOf: { type: 'string', format: 'date-time' } } },
    },
  }, async (req) => {
    if (!deps.runBilling) throw unavailable('billing runs are not enabled in this process', 'BILLING_RUNS_UNAVAILABLE');
    const asOf = req.body?.asOf === undefined ? new Date(deps.clock.now()) : new Date(req.body.asOf);
    req.log.info({ asOf }, 'billing run requested');
    return deps.runBilling({ asOf });
  });

  app.get<{ Querystring: Page }>('/v1/bills', { config: { roles: ['subscriber'] }, schema: { querystring: pageQuery(100, 20) } }, async (req) => {
    const p = principalOf(req);
    if (p.role !== 'subscriber') throw new DomainError('forbidden', 'FORBIDDEN', 'this route is for subscribers');
    const page = await deps.bills.list(p.subscriberId, req.query);
    return { bills: page.bills.map(billSummaryView), nextCursor: page.nextCursor };
  });

  app.get<{ Params: { billId: string } }>('/v1/bills/:billId', { config: readers, schema: { params: idParams('billId') } },
    async (req) => billView(await deps.bills.get(scopeOf(req), lower(req.params.billId))));

  app.get<{ Params: { billId: string }; Querystring: Page }>('/v1/bills/:billId/calls', {
    config: readers, schema: { params: idParams('billId'), querystring: pageQuery(1000, 100) },
  }, async (req) => {
    // Scope first: another subscriber's bill is a 404 whatever else is configured.
    const bill = await deps.bills.getHeader(scopeOf(req), lower(req.params.billId));
    if (!deps.listBillCalls) throw unavailable('itemized calls are not enabled in this process', 'CALLS_UNAVAILABLE');
    const page = await deps.listBillCalls(bill, req.query);
    return { billId: bill.id, calls: page.calls, nextCursor: page.nextCursor };
  });
}
