/**
 * The demo's admission stage: a due date passes, the subscriber with the
 * largest unpaid bill is blocked, 911 still connects, the payment unblocks
 * the next call. Only public interfaces: the billing API and gRPC CanPlaceCall.
 */
import * as grpc from '@grpc/grpc-js';
import { phonebillV1 } from '../../core/grpc/proto.ts';
import type { BillingDemoContext } from './billing-stages.ts';
import { api } from './billing-stages.ts';

const say = (s = '') => process.stdout.write(`${s}\n`);

export interface AdmissionDemoContext extends BillingDemoContext {
  admission?: { addr: string; httpPort: number };
}

type Decision = { allowed: boolean; reason: string };

function canPlaceCall(client: grpc.Client, source: string, target: string): Promise<Decision & { us: number }> {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    (client as unknown as { CanPlaceCall: Function }).CanPlaceCall(
      { source_number: source, target_number: target }, { deadline: Date.now() + 2000 },
      (err: grpc.ServiceError | null, res: Decision) => {
        if (err) return reject(err);
        resolve({ ...res, us: Number(process.hrtime.bigint() - t0) / 1000 });
      });
  });
}

/** Polls CanPlaceCall until the expected reason comes back (propagation through Redis); returns it with the wait. */
async function until(client: grpc.Client, source: string, target: string, reason: string, timeoutMs = 15_000): Promise<Decision & { us: number; waitedMs: number }> {
  const t0 = Date.now();
  for (;;) {
    const d = await canPlaceCall(client, source, target);
    if (d.reason === reason || Date.now() - t0 > timeoutMs) return { ...d, waitedMs: Date.now() - t0 };
    await new Promise((r) => setTimeout(r, 5));
  }
}

const show = (label: string, d: Decision & { us: number }) =>
  say(`  CanPlaceCall ${label.padEnd(34)} → ${d.allowed ? 'allowed' : 'DENIED '} ${d.reason.padEnd(9)} (${Math.round(d.us)} µs round trip)`);

export const overdueBlocksCalls = {
  title: 'A due date passes: overdue blocks calls, 911 still connects, paying unblocks',
  async run(ctx: AdmissionDemoContext): Promise<void> {
    const { Admission } = phonebillV1();
    const client = new Admission(ctx.admission!.addr, grpc.credentials.createInsecure()) as grpc.Client;
    try {
      // The subscriber with the largest open bill.
      let best: { id: string; subscriberId: string; dueAt: string; totalCents: number; phone: string } | undefined;
      for (const [phone, id] of [...ctx.billing!.subscriberIds].slice(0, 300)) {
        const r = await api(ctx, 'GET', `/v1/subscribers/${id}/bills?limit=1`);
        const b = r.json?.bills?.[0];
        if (b && b.status === 'open' && (!best || b.totalCents > best.totalCents)) best = { id: b.id, subscriberId: id, dueAt: b.dueAt, totalCents: b.totalCents, phone };
      }
      if (!best) throw new Error('no open bill to let fall due');
      const callee = '+13125550143';
      say(`subscriber ${best.phone}: bill ${best.id}, ${(best.totalCents / 100).toFixed(2)} USD, due ${best.dueAt}`);
      show(`${best.phone} → ${callee}`, await until(client, best.phone, callee, 'ALLOWED'));

      const asOf = new Date(Date.parse(best.dueAt) + 86_400_000).toISOString();
      const run = await api(ctx, 'POST', '/v1/billing-runs', { asOf });
      if (run.status !== 200) throw new Error(`billing run answered ${run.status}: ${JSON.stringify(run.json)}`);
      say(`POST /v1/billing-runs {"asOf":"${asOf}"} (a day after the due date) → ${run.json.billsCreated} new bills; overdue evaluated as of then and published to Redis`);
      const blocked = await until(client, best.phone, callee, 'OVERDUE');
      show(`${best.phone} → ${callee}`, blocked);
      say(`    (the block reached the admission replica ${blocked.waitedMs} ms after the run answered)`);
      show(`${best.phone} → 911`, await canPlaceCall(client, best.phone, '911'));
      show(`${best.phone} → 611 (customer care)`, await canPlaceCall(client, best.phone, '611'));

      // Every overdue bill of theirs must be settled (their other period's bill fell due too).
      const owed = (await api(ctx, 'GET', `/v1/subscribers/${best.subscriberId}/bills?limit=100`)).json.bills
        .filter((b: { status: string; balanceCents: number }) => b.status === 'overdue' && b.balanceCents > 0) as { id: string; balanceCents: number }[];
      const t0 = performance.now();
      let pay: Awaited<ReturnType<typeof api>> | undefined;
      for (const b of owed) {
        pay = await api(ctx, 'POST', '/v1/payments', { billId: b.id, amountCents: b.balanceCents, idempotencyKey: `demo-${b.id}` });
        if (pay.status !== 201) throw new Error(`payment answered ${pay.status}: ${JSON.stringify(pay.json)}`);
        say(`POST /v1/payments {"billId":"${b.id}","amountCents":${b.balanceCents}} → 201, bill ${pay.json.bill.status}, balance ${pay.json.bill.balanceCents}`);
      }
      const payMs = performance.now() - t0;
      say(`(${owed.length} overdue bill(s) paid in ${payMs.toFixed(0)} ms)`);
      const allowed = await until(client, best.phone, callee, 'ALLOWED');
      show(`${best.phone} → ${callee}`, allowed);
      say(`    (unblocked in Redis before the payment answered; the replica had it ${allowed.waitedMs} ms later)`);
      const first = owed[0]!;
      const again = await api(ctx, 'POST', '/v1/payments', { billId: first.id, amountCents: first.balanceCents, idempotencyKey: `demo-${first.id}` });
      say(`the same payment again (same idempotency key) → ${again.status}, nothing recorded twice`);
      const metrics = await (await fetch(`http://127.0.0.1:${ctx.admission!.httpPort}/metrics`)).text();
      const line = (name: string) => metrics.split('\n').filter((l) => l.startsWith(name)).join('\n  ');
      say(`admission /metrics:\n  ${line('phonebill_admission_decisions_total')}`);
    } finally {
      client.close();
    }
  },
};
