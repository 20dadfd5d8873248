/** The API's JSON shapes (camelCase, instants as RFC 3339 UTC, money in integer cents). */
import type { Bill, BillBalance, BillLine, CreditTransfer, Payment, RecordedPayment, Subscriber } from '../../adapters/postgres/index.ts';
import type { BillWithLines } from '../../bills/index.ts';
import { displayMinutes } from '../../domain/index.ts';

const iso = (d: Date) => d.toISOString();

export function subscriberView(s: Subscriber) {
  return {
    id: s.id,
    phoneNumber: s.phoneNumber,
    subscriptionDate: s.subscriptionDate,
    timeZone: s.timeZone,
    anniversaryDay: s.anniversaryDay,
    plan: s.plan,
    status: s.status,
    createdAt: iso(s.createdAt),
  };
}

export function billSummaryView(b: Bill) {
  return {
    id: b.id,
    subscriberId: b.subscriberId,
    periodIndex: b.periodIndex,
    periodStart: iso(b.periodStart),
    periodEnd: iso(b.periodEnd),
    periodStartLocal: b.periodStartLocal,
    periodEndLocal: b.periodEndLocal,
    issuedAt: iso(b.issuedAt),
    dueAt: iso(b.dueAt),
    currency: b.currency,
    totalCents: b.totalCents,
    paidCents: b.paidCents,
    // Negative when overpaid: a credit carried to the next bill.
    balanceCents: b.totalCents - b.paidCents,
    status: b.status,
    watermark: iso(b.watermark),
  };
}

// Whole minutes rounded up, as the tariff defines them for display; billableSeconds is exact
// and is what the amount was rated from (they differ only on plans with sub-minute increments).
export const minutesOf = displayMinutes;

export function lineView(l: BillLine) {
  return {
    kind: l.kind,
    description: l.description,
    calls: l.calls,
    minutes: minutesOf(l.billableSeconds),
    billableSeconds: l.billableSeconds,
    amountCents: l.amountCents,
    // Late-usage lines name the earlier period their calls belong to; null otherwise.
    usagePeriodStart: l.usagePeriodStart && iso(l.usagePeriodStart),
    usagePeriodEnd: l.usagePeriodEnd && iso(l.usagePeriodEnd),
  };
}

export function billView(b: BillWithLines) {
  return { ...billSummaryView(b), lines: b.lines.map(lineView) };
}

export function paymentView(p: Payment) {
  return { id: p.id, billId: p.billId, amountCents: p.amountCents, idempotencyKey: p.idempotencyKey, createdAt: iso(p.createdAt) };
}

/** A bill's balance after a payment; negative when overpaid (credit waiting for the next bill). */
export function billBalanceView(b: BillBalance) {
  return { id: b.id, totalCents: b.totalCents, paidCents: b.paidCents, balanceCents: b.totalCents - b.paidCents, status: b.status };
}

export function recordedPaymentView(r: RecordedPayment) {
  return { payment: paymentView(r.payment), bill: billBalanceView(r.bill), carriedForward: r.carried.map((c) => ({ billId: c.billId, amountCents: c.amountCents })) };
}

export function creditView(c: CreditTransfer) {
  return { fromBillId: c.fromBillId, toBillId: c.toBillId, amountCents: c.amountCents, paymentId: c.paymentId, createdAt: iso(c.createdAt) };
}
