/** Payments: how a payment lands on a subscriber's bills (pure), and the record/list service. */
export { applyPayment, type LedgerBill, type CreditMove, type PaymentEffect } from './domain.ts';
export { createPaymentService, validatePayment, MAX_PAYMENT_CENTS, MAX_IDEMPOTENCY_KEY_LENGTH, type PaymentService, type PaymentServiceOptions } from './service.ts';
