/** Billing's PostgreSQL adapters: schema migrations and the repositories behind the API. */
export { migrateBilling, BILLING_MIGRATIONS_DIR } from './migrate.ts';
export { createSubscriberRepository, type SubscriberRepository, type Subscriber, type NewSubscriber, type SubscriberStatus } from './subscribers.ts';
export { createBillRepository, type BillRepository, type Bill, type BillLine, type BillStatus } from './bills.ts';
export { mapPgError, isUnavailable, isUniqueViolation } from './errors.ts';
export { createPaymentRepository, type PaymentRepository, type Payment, type NewPayment, type RecordedPayment, type BillBalance, type CreditTransfer } from './payments.ts';
export { createOverdueRepository, withRetry, type OverdueRepository, type OverdueEvaluation, type SubscriberAdmissionState } from './overdue.ts';
