/**
 * Overdue rules, pure. The SQL in adapters/postgres/overdue.ts applies the
 * same rules set-based; these are the definitions it is tested against.
 *
 * - A bill is `paid` when its balance (total − paid) is ≤ 0, `overdue` when
 *   its due time has passed (due < asOf, strictly) and it still owes, else `open`.
 * - Payments cover a bill's non-premium charges first, so the part of a
 *   balance that can block service is max(0, total − premium − paid).
 * - A subscriber is blocked when any bill past its due time has such a
 *   blocking debt above zero. Pay-per-call (900) charges never block
 *   (47 CFR 64.1507): a bill whose only unpaid part is premium is overdue
 *   but does not block.
 */
export type BillStatus = 'open' | 'paid' | 'overdue';

export interface BillState {
  totalCents: number;
  paidCents: number;
  dueAtMs: number;
}

export function billStatus(b: BillState, asOfMs: number): BillStatus {
  if (b.totalCents - b.paidCents <= 0) return 'paid';
  return b.dueAtMs < asOfMs ? 'overdue' : 'open';
}

/** The unpaid part of a bill that can block service. */
export function blockingDebtCents(b: { totalCents: number; paidCents: number; premiumCents: number }): number {
  return Math.max(0, b.totalCents - b.premiumCents - b.paidCents);
}

export function blocksService(b: BillState & { premiumCents: number }, asOfMs: number): boolean {
  return b.dueAtMs < asOfMs && b.totalCents - b.paidCents > 0 && blockingDebtCents(b) > 0;
}

/** A stored bill line (bills.lines); `premiumCents` is the 900 share of a mixed line, when a line declares one. */
export interface ChargeLine { kind: string; amountCents: number; premiumCents?: number }

/** Pay-per-call charges on a bill (mirrors bill_premium_cents() in SQL). */
export function premiumCentsOf(lines: readonly ChargeLine[]): number {
  let sum = 0;
  for (const l of lines) sum += l.kind === 'premium' ? l.amountCents : (l.premiumCents ?? 0);
  return sum;
}

/**
 * The instant overdue state is evaluated at: the later of the wall clock and
 * the latest instant any evaluation used, so it never moves backwards (a
 * billing run as of a future instant is not undone by the next sweep).
 */
export const effectiveAsOf = (nowMs: number, latestMs: number | null): number => (latestMs === null ? nowMs : Math.max(nowMs, latestMs));
