/** Bills, read side: scoped lookups and newest-first pages for the API. */
export { createBillReader, encodeBillCursor, decodeBillCursor, type BillReader, type BillScope, type BillPage, type BillWithLines } from './service.ts';
