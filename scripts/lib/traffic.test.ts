import { describe, expect, it } from 'vitest';
import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { DateTime } from 'luxon';
import { classifyCall } from '../../core/numbers/index.ts';
import { createTraffic, formatInstant, lastFullMonth, type TrafficEvent } from './traffic.ts';

const month = lastFullMonth(Date.parse('2026-11-20T10:00:00Z'));
const opts = { seed: 7, subscribers: 600, calls: 40_000, from: month.from, to: month.to, batchSize: 500 };

function all(tr: ReturnType<typeof createTraffic>): TrafficEvent[] {
  const out: TrafficEvent[] = [];
  for (const b of tr.batches()) out.push(...b);
  return out;
}

describe('traffic generator', () => {
  const tr = createTraffic(opts);
  const events = all(tr);

  it('picks the last full month before now', () => {
    expect(month).toEqual({ from: Date.parse('2026-10-01T00:00:00Z'), to: Date.parse('2026-11-01T00:00:00Z'), label: '2026-10' });
    expect(lastFullMonth(Date.parse('2027-01-01T00:00:00Z')).label).toBe('2026-12');
  });

  it('is deterministic for a seed and differs across seeds', () => {
    const again = createTraffic(opts);
    expect(again.subscribers).toEqual(tr.subscribers);
    expect(all(again)).toEqual(events);
    expect(all(tr)).toEqual(events); // a second pass over the same object too
    expect(createTraffic({ ...opts, seed: 8 }).subscribers[0]!.phone).not.toBe(tr.subscribers[0]!.phone);
  });

  it('draws other calls among the same subscribers with another eventSeed', () => {
    const other = createTraffic({ ...opts, eventSeed: 99 });
    expect(other.subscribers).toEqual(tr.subscribers);
    const first = other.batches().next().value as TrafficEvent[];
    expect(first.map((e) => e.source_number)).not.toEqual(events.slice(0, first.length).map((e) => e.source_number));
  });

  it('makes unique subscribers with valid US/CA numbers and matching zones', () => {
    expect(tr.subscribers).toHaveLength(600);
    expect(new Set(tr.subscribers.map((s) => s.phone)).size).toBe(600);
    for (const s of tr.subscribers) {
      const p = parsePhoneNumberFromString(s.phone);
      expect(p?.isValid(), s.phone).toBe(true);
      expect(s.country === 'US' ? ['US', 'PR'] : ['CA']).toContain(p!.country);
      expect(s.subscribedOn).toBe(DateTime.fromMillis(s.subscribedAt, { zone: s.zone }).toISODate());
      const npa = s.phone.slice(2, 5);
      if (npa === '709') expect(s.zone).toBe('America/St_Johns');
      if (npa === '808') expect(s.zone).toBe('Pacific/Honolulu');
    }
    expect(new Set(tr.subscribers.map((s) => s.country))).toEqual(new Set(['US', 'CA']));
  });

  it('emits exactly the requested calls, plus the counted duplicates and invalid events, in bounded batches', () => {
    const calls = events.filter((e) => e.kind === 'call');
    expect(calls).toHaveLength(40_000);
    expect(new Set(calls.map((e) => e.call_id)).size).toBe(40_000);
    expect(tr.stats.calls).toBe(40_000);
    expect(tr.stats.events).toBe(events.length);
    expect(events.filter((e) => e.kind === 'duplicate')).toHaveLength(tr.stats.duplicates);
    expect(events.filter((e) => e.kind === 'invalid')).toHaveLength(tr.stats.invalid);
    expect(tr.stats.duplicates).toBeGreaterThan(250); // ~1 %
    expect(tr.stats.duplicates).toBeLessThan(600);
    expect(tr.stats.invalid).toBeGreaterThan(40); // ~0.2 %
    for (const n of Object.values(tr.stats.invalidByKind)) expect(n).toBeGreaterThan(0);
    let max = 0;
    for (const b of tr.batches()) max = Math.max(max, b.length);
    expect(max).toBeLessThanOrEqual(500 + 40);
  });

  it('resends duplicates with the same call_id and content as an earlier call', () => {
    const first = new Map<string, TrafficEvent>();
    for (const e of events) {
      if (e.kind === 'call') first.set(e.call_id, e);
      if (e.kind === 'duplicate') {
        const orig = first.get(e.call_id);
        expect(orig, e.call_id).toBeDefined();
        expect({ ...e, kind: 'call' }).toEqual(orig);
      }
    }
  });

  it('keeps valid calls inside the month, after the subscription, with sane durations and valid targets', () => {
    const subs = new Map(tr.subscribers.map((s) => [s.phone, s]));
    const wrong: string[] = []; // plain checks, one assertion: 40,000 expect() calls would dominate the run
    let zero = 0;
    for (const e of events.filter((x) => x.kind === 'call')) {
      const s = subs.get(e.source_number);
      if (e.startMs < month.from || e.startMs >= month.to) wrong.push(`${e.call_id}: starts outside the month`);
      if (e.endMs < e.startMs || e.endMs - e.startMs > 24 * 3_600_000) wrong.push(`${e.call_id}: duration ${e.endMs - e.startMs}`);
      if (!s || e.startMs < s.subscribedAt) wrong.push(`${e.call_id}: before the subscription`);
      if (e.target !== 'service_code' && !parsePhoneNumberFromString(e.target_number)?.isValid()) wrong.push(`${e.call_id}: invalid target ${e.target_number}`);
      // What the generator meant is what the ingest service will derive.
      const c = classifyCall(e.source_number, e.target_number);
      if (!c.ok || c.callClass !== e.target) wrong.push(`${e.call_id}: meant ${e.target}, classified ${JSON.stringify(c)}`);
      if (e.endMs === e.startMs) zero++;
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(zero).toBeGreaterThan(1000); // ~6 % unanswered
    const targets = tr.stats.byTarget;
    expect(targets.domestic / 40_000).toBeGreaterThan(0.7);
    for (const n of Object.values(targets)) expect(n).toBeGreaterThan(0);
  });

  it('breaks each invalid event in the field it names', () => {
    for (const e of events.filter((x) => x.kind === 'invalid')) {
      switch (e.invalid) {
        case 'missing_call_id': expect(e.call_id).toBe(''); break;
        case 'end_before_start': expect(e.endMs).toBeLessThan(e.startMs); break;
        case 'non_nanp':
          expect(e.target_number.startsWith('+44')).toBe(true);
          expect(classifyCall(e.source_number, e.target_number)).toMatchObject({ ok: false, field: 'target_number' });
          break;
        case 'future_start': expect(e.startMs).toBeGreaterThan(month.to + 86_400_000); break;
        case 'bad_number': {
          const n = e.invalidField === 'source_number' ? e.source_number : e.target_number;
          expect(parsePhoneNumberFromString(n)?.isValid() ?? false).toBe(false);
          expect(classifyCall(e.source_number, e.target_number)).toMatchObject({ ok: false, field: e.invalidField });
        }
      }
    }
  });

  it('follows a daily rhythm in local time and has one sudden peak hour', () => {
    const byLocalHour = new Array(24).fill(0);
    const byUtcHour = new Map<number, number>();
    for (const e of events) {
      if (e.kind !== 'call') continue;
      byLocalHour[DateTime.fromMillis(e.startMs, { zone: e.zone }).hour]++;
      const h = Math.floor(e.startMs / 3_600_000);
      byUtcHour.set(h, (byUtcHour.get(h) ?? 0) + 1);
    }
    expect(byLocalHour[14]).toBeGreaterThan(byLocalHour[3] * 8);
    const counts = [...byUtcHour.values()].sort((a, b) => a - b);
    const median = counts[counts.length >> 1]!;
    expect(byUtcHour.get(tr.peakHour! / 3_600_000)!).toBeGreaterThan(median * 5);
    // The peak is a single hour: the next busiest hour is far below it.
    expect(counts[counts.length - 2]!).toBeLessThan(byUtcHour.get(tr.peakHour! / 3_600_000)! / 2);
  });

  it('formats instants as RFC 3339 with the local offset', () => {
    const t = Date.parse('2026-10-14T22:03:07.250Z');
    expect(formatInstant(t)).toBe('2026-10-14T22:03:07.250Z');
    expect(formatInstant(t, 'America/St_Johns')).toBe('2026-10-14T19:33:07.250-02:30');
    expect(formatInstant(t, 'Pacific/Honolulu')).toBe('2026-10-14T12:03:07.250-10:00');
  });
});
