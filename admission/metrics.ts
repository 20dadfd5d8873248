/**
 * Prometheus metrics of one admission instance, in its own Registry.
 *
 * The per-call figures are plain array increments on the hot path (a
 * prom-client inc/observe costs 0.5–1 µs here, a large share of a few-µs
 * decision); prom-client reads them only when /metrics is scraped.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { DECISIONS, type Decision } from './domain/decide.ts';
import type { ReplicaStatus } from './replica/sync.ts';

/** Upper bounds of the decision-time buckets, in microseconds. */
// Fine around the 10 µs target, so p99 is read from narrow buckets rather than interpolated across a wide one.
export const DECISION_BUCKETS_US: readonly number[] = [0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 30, 50, 100, 250, 1000, 10_000];

/**
 * A fixed-bucket histogram fed in milliseconds (performance.now() deltas)
 * and exported in seconds, registered with prom-client as a plain metric.
 */
export class MicroHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #boundsMs: Float64Array;
  readonly #counts: Float64Array;
  #sumMs = 0;
  #count = 0;

  constructor(readonly name: string, readonly help: string, readonly boundsUs: readonly number[]) {
    this.#boundsMs = Float64Array.from(boundsUs, (us) => us / 1000);
    this.#counts = new Float64Array(boundsUs.length + 1);
  }

  observeMs(ms: number): void {
    const b = this.#boundsMs;
    let i = 0;
    while (i < b.length && ms > b[i]!) i++;
    this.#counts[i]!++;
    this.#sumMs += ms;
    this.#count++;
  }

  get count(): number { return this.#count; }

  /** Non-cumulative count per bucket (the last one is +Inf). */
  counts(): number[] { return [...this.#counts]; }

  /** prom-client's metric protocol: cumulative buckets, sum and count, in seconds. */
  async get() {
    const name = this.name;
    let acc = 0;
    const values: { value: number; labels: Record<string, string | number>; metricName: string }[] = this.boundsUs.map((us, i) => {
      acc += this.#counts[i]!;
      return { value: acc, labels: { le: us / 1e6 }, metricName: `${name}_bucket` };
    });
    values.push(
      { value: this.#count, labels: { le: '+Inf' }, metricName: `${name}_bucket` },
      { value: this.#sumMs / 1000, labels: {}, metricName: `${name}_sum` },
      { value: this.#count, labels: {}, metricName: `${name}_count` },
    );
    return { name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

export interface AdmissionMetrics {
  registry: Registry;
  decisionTime: MicroHistogram;
  /** One decision answered. */
  decided(d: Decision): void;
  /** One call refused with INVALID_ARGUMENT. */
  invalid(field: 'source_number' | 'target_number'): void;
}

const ALL_DECISIONS: readonly Decision[] = Object.values(DECISIONS);

export function createAdmissionMetrics(opts: { status: () => ReplicaStatus; processMetrics?: boolean }): AdmissionMetrics {
  const registry = new Registry();
  const registers = [registry];
  if (opts.processMetrics) collectDefaultMetrics({ register: registry, prefix: 'phonebill_admission_' });

  const index = new Map<Decision, number>(ALL_DECISIONS.map((d, i) => [d, i]));
  const decided = new Float64Array(ALL_DECISIONS.length);
  const invalid = { source_number: 0, target_number: 0 };

  new Counter({
    name: 'phonebill_admission_decisions_total',
    help: 'CanPlaceCall answers by reason (the proto enum), rule (which rule answered: emergency, out_of_area, unknown_subscriber, overdue, overdue_exempt for 611/988, subscriber, no_state) and allowed.',
    labelNames: ['reason', 'rule', 'allowed'],
    registers,
    collect() {
      this.reset();
      ALL_DECISIONS.forEach((d, i) => { if (decided[i]! > 0) this.inc({ reason: d.reason, rule: d.rule, allowed: String(d.allowed) }, decided[i]!); });
    },
  });
  new Counter({
    name: 'phonebill_admission_invalid_total',
    help: 'CanPlaceCall calls refused with INVALID_ARGUMENT, by the field at fault.',
    labelNames: ['field'],
    registers,
    collect() {
      this.reset();
      for (const [field, n] of Object.entries(invalid)) if (n > 0) this.inc({ field }, n);
    },
  });
  const decisionTime = new MicroHistogram(
    'phonebill_admission_decision_seconds',
    'Server-side decision time: from the request decoded to the response handed to grpc-js.',
    DECISION_BUCKETS_US,
  );
  // prom-client accepts any object speaking its metric protocol (name, help, type, get()).
  registry.registerMetric(decisionTime as unknown as Metric);

  const gauge = (name: string, help: string, read: (s: ReplicaStatus) => number | null) => new Gauge({
    name,
    help,
    registers,
    collect() {
      const v = read(opts.status());
      if (v === null) this.reset();
      else this.set(v);
    },
  });
  gauge('phonebill_admission_replica_age_seconds', 'Seconds since the replica was last confirmed current against Redis (grows while Redis is unreachable or its epoch is missing); absent before the first load.', (s) => s.ageSeconds);
  gauge('phonebill_admission_replica_in_sync', '1 when the last check confirmed the replica current, else 0.', (s) => (s.inSync ? 1 : 0));
  gauge('phonebill_admission_state_loaded', '1 once a full state was loaded from Redis; 0 means calls are answered by ADMISSION_NO_STATE_POLICY.', (s) => (s.loaded ? 1 : 0));
  gauge('phonebill_admission_replica_subscribers', 'Subscriber numbers in the replica.', (s) => s.subscribers);
  gauge('phonebill_admission_replica_blocked', 'Blocked (overdue) numbers in the replica.', (s) => s.blocked);
  gauge('phonebill_admission_replica_bytes', 'Memory held by the replica\'s number sets.', (s) => s.bytes);
  const counter = (name: string, help: string, read: (s: ReplicaStatus) => number) => new Counter({
    name,
    help,
    registers,
    collect() {
      this.reset();
      this.inc(read(opts.status()));
    },
  });
  counter('phonebill_admission_replica_loads_total', 'Full loads from Redis since start.', (s) => s.loads);
  counter('phonebill_admission_replica_changes_applied_total', 'Change messages that changed the replica since start.', (s) => s.changesApplied);
  counter('phonebill_admission_replica_messages_ignored_total', 'Change messages ignored as malformed.', (s) => s.messagesIgnored);

  return {
    registry,
    decisionTime,
    decided(d) { decided[index.get(d)!]!++; },
    invalid(field) { invalid[field]++; },
  };
}
