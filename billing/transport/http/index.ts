/** The billing HTTP API: build the app (tests, embedding) or start it listening. */
export { buildBillingApp, type BillingAppOptions } from './app.ts';
export { startBillingApi, type BillingApi } from './server.ts';
export type { RunBilling, BillingRunSummary, ListBillCalls, BillCallsPage } from './routes.ts';
export { STATUS_BY_KIND, STATUS_BY_CODE, errorBody, type ErrorBody } from './errors.ts';
