/**
 * Reading bills. Scope is decided by the caller's principal before any query:
 * a subscriber only ever queries their own bills, so another subscriber's
 * bill is not found exactly like a missing one.
 */
import { invalid, notFound } from '../../core/errors.ts';
import type { Bill, BillLine, BillRepository, SubscriberRepository } from '../adapters/postgres/index.ts';

export interface BillWithLines extends Bill { lines: BillLine[] }

export interface BillPage { bills: Bill[]; nextCursor: string | null }

/** Who may see which bills: one subscriber's, or everyone's (operator). */
export type BillScope = { subscriberId: string } | 'all';

export interface BillReader {
  get(scope: BillScope, billId: string): Promise<BillWithLines>;
  /** The bill without its lines (for itemized calls). */
  getHeader(scope: BillScope, billId: string): Promise<Bill>;
  /** Newest first. */
  list(subscriberId: string, page: { limit: number; cursor?: string }): Promise<BillPage>;
  /** Operator view: 404 SUBSCRIBER_NOT_FOUND for an unknown subscriber rather than an empty list. */
  listForKnownSubscriber(subscriberId: string, page: { limit: number; cursor?: string }): Promise<BillPage>;
}

// Cursors are opaque to clients; inside, the period index of the last bill returned.
export const encodeBillCursor = (periodIndex: number) => Buffer.from(`p${periodIndex}`).toString('base64url');

export function decodeBillCursor(cursor: string): number {
  const m = /^p(\d{1,9})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m) throw invalid('cursor', 'is not a cursor returned by this API', 'INVALID_CURSOR');
  return Number(m[1]);
}

export function createBillReader(deps: { bills: BillRepository; subscribers: SubscriberRepository }): BillReader {
  const header = async (scope: BillScope, billId: string) => {
    const bill = await deps.bills.get(billId, scope === 'all' ? undefined : scope.subscriberId);
    if (!bill) throw notFound('bill', 'BILL_NOT_FOUND');
    return bill;
  };
  const list = async (subscriberId: string, page: { limit: number; cursor?: string }): Promise<BillPage> => {
    const beforeIndex = page.cursor === undefined ? undefined : decodeBillCursor(page.cursor);
    // One extra row tells whether another page exists without a count query.
    const rows = await deps.bills.listForSubscriber(subscriberId, { limit: page.limit + 1, beforeIndex });
    const bills = rows.slice(0, page.limit);
    const nextCursor = rows.length > page.limit ? encodeBillCursor(bills[bills.length - 1]!.periodIndex) : null;
    return { bills, nextCursor };
  };
  return {
    getHeader: header,
    async get(scope, billId) {
      const bill = await header(scope, billId);
      return { ...bill, lines: await deps.bills.lines(bill.id) };
    },
    list,
    async listForKnownSubscriber(subscriberId, page) {
      if (!(await deps.subscribers.get(subscriberId))) throw notFound('subscriber', 'SUBSCRIBER_NOT_FOUND');
      return list(subscriberId, page);
    },
  };
}
