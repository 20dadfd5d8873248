/**
 * Payment routes: record a payment (operator or payment processor), list a
 * bill's payments (operator). Decode, call the payment service, shape.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { invalid } from '../../../core/errors.ts';
import { MAX_IDEMPOTENCY_KEY_LENGTH, MAX_PAYMENT_CENTS, type PaymentService } from '../../payments/index.ts';
import { creditView, paymentView, recordedPaymentView } from './views.ts';

const uuid = { type: 'string', format: 'uuid' } as const;

// The app's validator coerces types (for query strings); money must not be
// coerced from "500" or true, so the body's types are checked as sent first.
const STRICT_TYPES: Record<string, 'number' | 'string'> = { amountCents: 'number', billId: 'string', idempotencyKey: 'string' };
async function strictBodyTypes(req: FastifyRequest): Promise<void> {
  const body = req.body;
  if (!body || typeof body !== 'object' || Array.isArray(body)) return;
  for (const [field, type] of Object.entries(STRICT_TYPES)) {
    const v = (body as Record<string, unknown>)[field];
    if (v !== undefined && typeof v !== type) {
      throw invalid(field, type === 'number' ? 'must be an integer number of cents' : field === 'billId' ? 'must be a UUID' : `must be a string of 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`);
    }
  }
}

export function registerPaymentRoutes(app: FastifyInstance, payments: PaymentService): void {
  app.post<{ Body: { billId: string; amountCents: number; idempotencyKey: string } }>('/v1/payments', {
    config: { roles: ['operator', 'payments'] },
    preValidation: strictBodyTypes,
    schema: {
      body: {
        type: 'object',
        required: ['billId', 'amountCents', 'idempotencyKey'],
        additionalProperties: false,
        properties: {
          billId: uuid,
          amountCents: { type: 'integer', minimum: 1, maximum: MAX_PAYMENT_CENTS },
          idempotencyKey: { type: 'string', minLength: 1, maxLength: MAX_IDEMPOTENCY_KEY_LENGTH },
        },
      },
    },
  }, async (req, reply) => {
    const r = await payments.record(req.body);
    // A replay answers 200 with the first request's body: nothing new was created.
    if (r.replayed) reply.header('idempotent-replayed', 'true');
    return reply.code(r.replayed ? 200 : 201).send(recordedPaymentView(r));
  });

  app.get<{ Querystring: { billId: string } }>('/v1/payments', {
    config: { roles: ['operator'] },
    schema: { querystring: { type: 'object', required: ['billId'], properties: { billId: uuid } } },
  }, async (req) => {
    const billId = req.query.billId.toLowerCase();
    const { payments: list, credits } = await payments.listForBill(billId);
    return { billId, payments: list.map(paymentView), credits: credits.map(creditView) };
  });
}
