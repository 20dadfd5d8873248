/**
 * The server-side decision time from two scrapes of the admission service's
 * /metrics: the calls between them, as quantiles interpolated within the
 * histogram's buckets (as Prometheus' histogram_quantile does).
 */
export type Buckets = Map<number, number>; // upper bound (s) → cumulative count

const LINE = /^phonebill_admission_decision_seconds_bucket\{le="([^"]+)"\} (\S+)$/gm;

export function parseDecisionBuckets(text: string): Buckets {
  const b: Buckets = new Map();
  for (const m of text.matchAll(LINE)) b.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  if (b.size === 0) throw new Error('no phonebill_admission_decision_seconds buckets in /metrics');
  return b;
}

export function quantileUs(before: Buckets, after: Buckets, q: number): { value: number; count: number } {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const cum = bounds.map((le) => (after.get(le) ?? 0) - (before.get(le) ?? 0));
  const count = cum[cum.length - 1] ?? 0;
  if (count === 0) return { value: NaN, count };
  const rank = q * count;
  let lower = 0;
  let below = 0;
  for (let i = 0; i < bounds.length; i++) {
    if (cum[i]! >= rank) {
      const upper = bounds[i]!;
      // Past the last finite bound there is nothing to interpolate to: report that bound.
      if (!Number.isFinite(upper)) return { value: lower * 1e6, count };
      const inBucket = cum[i]! - below;
      const frac = inBucket > 0 ? (rank - below) / inBucket : 1;
      return { value: (lower + (upper - lower) * frac) * 1e6, count };
    }
    lower = bounds[i]!;
    below = cum[i]!;
  }
  return { value: lower * 1e6, count };
}

export function decisionQuantiles(before: Buckets, after: Buckets): { p50Us: number; p99Us: number; count: number } {
  const p50 = quantileUs(before, after, 0.5);
  return { p50Us: p50.value, p99Us: quantileUs(before, after, 0.99).value, count: p50.count };
}
