/** Payment use cases: record one (validated, idempotent), list a bill's. */
import type { Clock } from '../../core/clock.ts';
import { invalid, notFound } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { UUID_RE } from '../auth/principal.ts';
import type { CreditTransfer, NewPayment, Payment, PaymentRepository, RecordedPayment } from '../adapters/postgres/payments.ts';

/** $100,000,000.00: far above any phone bill, far below where cents stop being exact. */
export const MAX_PAYMENT_CENTS = 10_000_000_000;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 128;

export interface PaymentService {
  /** Throws invalid (naming the field), not_found BILL_NOT_FOUND, conflict IDEMPOTENCY_KEY_REUSED. */
  record(input: NewPayment): Promise<RecordedPayment>;
  /** Throws not_found BILL_NOT_FOUND. */
  listForBill(billId: string): Promise<{ payments: Payment[]; credits: CreditTransfer[] }>;
}

export interface PaymentServiceOptions {
  repo: PaymentRepository;
  clock: Clock;
  log?: Logger;
  /**
   * Awaited after the payment is committed and before record() resolves, for
   * replays too — e.g. publishing the payer's blocked state to Redis so the
   * answer implies the unblock. Must not throw (the payment stands anyway).
   */
  onRecorded?: (r: RecordedPayment) => Promise<void>;
}

export function validatePayment(input: { billId?: unknown; amountCents?: unknown; idempotencyKey?: unknown }): NewPayment {
  const { billId, amountCents, idempotencyKey } = input;
  if (typeof billId !== 'string' || !UUID_RE.test(billId)) throw invalid('billId', 'must be a UUID');
  if (typeof amountCents !== 'number' || !Number.isInteger(amountCents)) throw invalid('amountCents', 'must be an integer number of cents');
  if (amountCents < 1 || amountCents > MAX_PAYMENT_CENTS) throw invalid('amountCents', `must be between 1 and ${MAX_PAYMENT_CENTS}`);
  if (typeof idempotencyKey !== 'string' || idempotencyKey.length < 1 || idempotencyKey.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw invalid('idempotencyKey', `must be a string of 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`);
  }
  return { billId: billId.toLowerCase(), amountCents, idempotencyKey };
}

export function createPaymentService(opts: PaymentServiceOptions): PaymentService {
  return {
    async record(input) {
      const p = validatePayment(input);
      const r = await opts.repo.record(p, opts.clock.now());
      opts.log?.info({ paymentId: r.payment.id, billId: r.bill.id, subscriberId: r.payment.subscriberId, amountCents: p.amountCents, replayed: r.replayed, status: r.bill.status },
        r.replayed ? 'payment replayed (idempotency key seen before)' : 'payment recorded');
      if (opts.onRecorded) await opts.onRecorded(r);
      return r;
    },
    async listForBill(billId) {
      const out = await opts.repo.listForBill(billId.toLowerCase());
      if (!out) throw notFound('bill', 'BILL_NOT_FOUND');
      return out;
    },
  };
}
