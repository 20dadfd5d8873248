/**
 * The billing side of a process: the billing run (on a node-cron schedule
 * and on demand) and the itemized calls of a bill, both over the same
 * ClickHouse and PostgreSQL handles. The HTTP API is started from here too.
 */
import { schedule, type ScheduledTask } from 'node-cron';
import type { Clock } from '../core/clock.ts';
import type { Config } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import type { ClickHouse } from '../core/clickhouse/client.ts';
import { invalid, notFound } from '../core/errors.ts';
import type { Pool } from '../core/postgres/index.ts';
import { periodAt, type Tariff } from './domain/index.ts';
import type { Bill } from './adapters/postgres/index.ts';
import { billContext, createBillingRunStore } from './adapters/postgres/billing-runs.ts';
import { itemizeCalls } from './adapters/clickhouse/usage.ts';
import { createBillingRunner, tariffArrays, type RunBilling } from './run/run-billing.ts';
import type { BillCallsPage } from './transport/http/index.ts';

export interface Billing {
  runBilling: RunBilling;
  listBillCalls(bill: Bill, page: { limit: number; cursor?: string }): Promise<BillCallsPage>;
  /** Starts the configured schedule (no-op when BILLING_SCHEDULE is off). */
  startSchedule(): void;
  /** Stops the schedule and waits for a run in progress. */
  close(): Promise<void>;
}

export interface BillingDeps {
  pool: Pool;
  ch: ClickHouse;
  clock: Clock;
  log: Logger;
  tariff: Tariff;
  config: Pick<Config, 'billingGraceSeconds' | 'billingDueDays' | 'billingWatermarkLagSeconds' | 'billingChunkSize' | 'billingSchedule'>;
  afterBills?: (asOfMs: number) => Promise<Record<string, unknown> | void>;
}

// Cursor: the last call returned, as "<startedAtMs>:<callId>", base64url.
const encodeCursor = (startedAtMs: number, callId: string) => Buffer.from(`${startedAtMs}:${callId}`).toString('base64url');
function decodeCursor(cursor: string): { startedAtMs: number; callId: string } {
  const m = /^(\d{1,15}):(.{1,128})$/s.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m) throw invalid('cursor', 'is not a cursor returned by this API', 'INVALID_CURSOR');
  return { startedAtMs: Number(m[1]), callId: m[2]! };
}

export function createBilling(deps: BillingDeps): Billing {
  const log = deps.log.child({ component: 'billing' });
  const runBilling = createBillingRunner({
    store: createBillingRunStore(deps.pool), ch: deps.ch, clock: deps.clock, log, tariff: deps.tariff, config: deps.config,
    ...(deps.afterBills ? { afterBills: deps.afterBills } : {}),
  });
  const { arrays, planNo } = tariffArrays(deps.tariff);
  let task: ScheduledTask | undefined;
  let running: Promise<unknown> = Promise.resolve();

  return {
    runBilling,

    async listBillCalls(bill, page) {
      const ctx = await billContext(deps.pool, bill.subscriberId, bill.periodIndex);
      if (!ctx) throw notFound('bill');
      let after: { startedAtMs: number; callId: string } | undefined;
      if (page.cursor !== undefined) after = decodeCursor(page.cursor);
      const calls = await itemizeCalls(deps.ch, arrays, {
        sourceNumber: ctx.phoneNumber, planNo: planNo.get(ctx.plan) ?? 1,
        periodStartMs: bill.periodStart.getTime(), periodEndMs: bill.periodEnd.getTime(),
        firstStartMs: periodAt(ctx, 0).startMs, watermarkMs: bill.watermark.getTime(),
        lateAfterMs: ctx.previousWatermarkMs ?? 0, limit: page.limit + 1,
        ...(after ? { after } : {}),
      });
      const more = calls.length > page.limit;
      const shown = more ? calls.slice(0, page.limit) : calls;
      const last = shown[shown.length - 1];
      return {
        calls: shown as unknown as Record<string, unknown>[],
        nextCursor: more && last ? encodeCursor(Date.parse(last.startedAt), last.callId) : null,
      };
    },

    startSchedule() {
      const expr = deps.config.billingSchedule;
      if (!expr || expr === 'off' || task) return;
      task = schedule(expr, () => {
        // One run at a time in this process; the advisory lock covers the others.
        running = running.then(() => runBilling().catch((err) => log.error({ err }, 'scheduled billing run failed')));
      }, { name: 'billing' });
      log.info({ schedule: expr }, 'billing schedule started');
    },

    async close() {
      await task?.stop();
      task = undefined;
      await running;
    },
  };
}
