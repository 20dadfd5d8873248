/** Compact builders for stored bills' expected lines and for test calls. */
import type { TestCall } from '../../../test/calls.ts';
import type { BillLineDoc } from '../../adapters/postgres/billing-runs.ts';

export const ms = (iso: string) => {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) throw new Error(`bad instant ${iso}`);
  return t;
};
export const iso = (t: number) => new Date(t).toISOString();

const DESCRIPTIONS: Record<string, string> = {
  monthly_service: 'Monthly service', domestic: 'Domestic', cross_border: 'Cross-border', nanp_international: 'NANP international',
  premium: 'Premium (pay-per-call)', toll_free: 'Toll-free', service_code: 'Service codes',
};

/** A usage line as the tariff file describes it. */
export const line = (kind: string, calls: number, billableSeconds: number, amountCents: number): BillLineDoc =>
  ({ kind, description: DESCRIPTIONS[kind]!, calls, billableSeconds, amountCents });

export const monthly = (cents = 2000) => line('monthly_service', 0, 0, cents);

export const lateLine = (startLocal: string, endLocal: string, start: string, end: string, calls: number, billableSeconds: number, amountCents: number): BillLineDoc => ({
  kind: 'late_usage', description: `Late usage for period ${startLocal} to ${endLocal}`, calls, billableSeconds, amountCents,
  usagePeriodStart: iso(ms(start)), usagePeriodEnd: iso(ms(end)),
});

let seq = 0;
/** A call starting at `start` lasting `durMs`; ingested a minute after it ends unless told. */
export function call(source: string, target: string, start: string, durMs: number, o: { id?: string; ingested?: string } = {}): TestCall {
  const startMs = ms(start);
  return {
    callId: o.id ?? `call-${++seq}`, source, target, startMs, endMs: startMs + durMs,
    ingestedAtMs: o.ingested ? ms(o.ingested) : startMs + durMs + 60_000,
  };
}

/** The same call stored again (a resend), ingested later. */
export const resend = (c: TestCall, ingested: string): TestCall => ({ ...c, ingestedAtMs: ms(ingested) });
