/**
 * How a payment lands on a subscriber's bills, pure.
 *
 * A payment is made against one bill and raises its paid amount. What goes
 * beyond that bill's total (an overpayment) is credit: it moves forward to
 * the same subscriber's LATER bills that still owe, oldest first, each move a
 * credit transfer. Credit with no later bill owing stays on the bill (its
 * balance goes negative) until the next bill is issued; the overdue
 * evaluation then moves it (the same rule, in SQL). Credit never flows to an
 * earlier bill: the payer chose the bill, and an older debt is paid by naming it.
 */
import { billStatus, type BillStatus } from '../overdue/domain.ts';

export interface LedgerBill {
  id: string;
  periodIndex: number;
  totalCents: number;
  paidCents: number;
  dueAtMs: number;
  status: BillStatus;
}

export interface CreditMove { fromBillId: string; toBillId: string; amountCents: number }

export interface PaymentEffect {
  /** Bills whose paid amount or status changes, with their new values. */
  changed: { id: string; paidCents: number; status: BillStatus }[];
  moves: CreditMove[];
  /** The paid bill after the payment and any credit moved out of it. */
  bill: { id: string; totalCents: number; paidCents: number; status: BillStatus };
}

/** bills: every bill of the paid bill's subscriber. */
export function applyPayment(bills: readonly LedgerBill[], billId: string, amountCents: number, asOfMs: number): PaymentEffect {
  if (!Number.isSafeInteger(amountCents) || amountCents <= 0) throw new RangeError(`amountCents must be a positive integer, got ${amountCents}`);
  const ordered = [...bills].sort((a, b) => a.periodIndex - b.periodIndex);
  const paid = new Map(ordered.map((b) => [b.id, b.paidCents]));
  const target = ordered.find((b) => b.id === billId);
  if (!target) throw new RangeError(`bill ${billId} is not among the subscriber's bills`);

  paid.set(billId, target.paidCents + amountCents);
  const moves: CreditMove[] = [];
  let excess = Math.max(0, paid.get(billId)! - target.totalCents);
  for (const later of ordered) {
    if (excess === 0) break;
    if (later.periodIndex <= target.periodIndex) continue;
    const owed = later.totalCents - paid.get(later.id)!;
    if (owed <= 0) continue;
    const amount = Math.min(excess, owed);
    moves.push({ fromBillId: billId, toBillId: later.id, amountCents: amount });
    paid.set(later.id, paid.get(later.id)! + amount);
    paid.set(billId, paid.get(billId)! - amount);
    excess -= amount;
  }

  const changed: PaymentEffect['changed'] = [];
  for (const b of ordered) {
    const p = paid.get(b.id)!;
    const status = billStatus({ totalCents: b.totalCents, paidCents: p, dueAtMs: b.dueAtMs }, asOfMs);
    if (p !== b.paidCents || status !== b.status) changed.push({ id: b.id, paidCents: p, status });
  }
  const after = paid.get(billId)!;
  return {
    changed, moves,
    bill: { id: billId, totalCents: target.totalCents, paidCents: after, status: billStatus({ totalCents: target.totalCents, paidCents: after, dueAtMs: target.dueAtMs }, asOfMs) },
  };
}
