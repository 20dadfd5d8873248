/**
 * Random billing scenarios for the property and crash tests: subscribers
 * on every anniversary day (29, 30, 31 and Feb 29 2024 included) across the
 * served zones, calls concentrated on the places billing goes wrong (the
 * subscriber's own period boundaries, month ends, the leap day, US DST
 * weekends 2024-2026, the saver rate change), resends of the same call_id
 * ingested later, late arrivals around each run's watermark, and a series of
 * billing runs at increasing asOf instants.
 *
 * A scenario is plain data resolved from a fast-check value, so a seed
 * reproduces it exactly (the crash test's child builds its own from a seed).
 */
import fc from 'fast-check';
import { parseNumber } from '../../../core/numbers/index.ts';
import type { TestCall } from '../../../test/calls.ts';
import { periodAt, SUPPORTED_TIME_ZONES } from '../../domain/index.ts';
import type { NewSubscriber } from './harness.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;

export interface ScenarioRun { asOfMs: number; lagSeconds: number }
export interface Scenario { subscribers: NewSubscriber[]; calls: TestCall[]; runs: ScenarioRun[] }

/** Windows around which a scenario is set: month ends, the leap day, DST weekends, the saver rate change. */
const ANCHORS = [
  '2024-01-28', '2024-02-27', '2024-03-08', '2024-10-30', '2025-02-26', '2025-03-07', '2025-06-28',
  '2025-10-31', '2026-01-30', '2026-02-27', '2026-03-06', '2026-10-30',
].map((d) => Date.parse(`${d}T00:00:00Z`));

/** US DST changes (second Sunday of March, first Sunday of November), 09:00Z ≈ 02:00 local mid-continent. */
const DST = ['2024-03-10', '2024-11-03', '2025-03-09', '2025-11-02', '2026-03-08', '2026-11-01'].map((d) => Date.parse(`${d}T09:00:00Z`));
const LEAP = [Date.parse('2024-02-29T00:00:00Z'), Date.parse('2024-03-01T00:00:00Z')];
const SAVER_CHANGE = Date.parse('2025-07-01T04:00:00Z');

/** Zones the issue names, weighted up; any served zone otherwise. */
const EDGE_ZONES = ['America/St_Johns', 'Pacific/Honolulu', 'America/Phoenix', 'America/Regina', 'America/New_York', 'America/Los_Angeles', 'America/Adak', 'America/Halifax', 'America/Chicago'];
const SUB_NPAS = ['212', '312', '415', '808', '907', '305', '602', '303', '202', '416', '604', '709', '514', '306', '867', '226', '902', '787'];
const US_NPAS = ['212', '312', '415', '808', '907', '305', '602', '303', '201', '202'];
const CA_NPAS = ['416', '604', '709', '514', '306', '867', '226', '431', '902'];
const TOLL_FREE = ['800', '833', '844', '855', '866', '877', '888'];
const SERVICE_CODES = ['211', '311', '411', '511', '611', '711', '811', '911', '988'];

const valid = (n: string) => parseNumber(n).kind === 'nanp';
/** Exchanges valid in the NPAs where libphonenumber knows only some (USVI, Guam, Jamaica, Bahamas). */
const PARTIAL: Record<string, string[]> = {};
for (const npa of ['340', '671', '876', '242']) {
  PARTIAL[npa] = [];
  for (let nxx = 200; nxx <= 999; nxx++) {
    if (valid(`+1${npa}${nxx}0100`)) PARTIAL[npa]!.push(String(nxx));
  }
}

const pick = <T>(xs: readonly T[], i: number): T => xs[Math.abs(i) % xs.length]!;
const pad4 = (n: number) => String(Math.abs(n) % 10_000).padStart(4, '0');

/** Subscriber i's number: exchanges 234-533 are only ever subscribers', 600-999 only others'. */
export function subscriberNumber(npa: string, i: number): string {
  const n = `+1${npa}${234 + (i % 300)}${String(1000 + i).padStart(4, '0')}`;
  if (!valid(n)) throw new Error(`generated an invalid subscriber number ${n}`);
  return n;
}

const TARGET_KINDS = ['sub', 'sub', 'us', 'us', 'us', 'ca', 'ca', 'pr', 'vi', 'gu', 'jm', 'bs', 'tf', 'prem', 'svc'] as const;

function targetNumber(kind: (typeof TARGET_KINDS)[number], a: number, b: number, subs: readonly NewSubscriber[]): string {
  const other = (npas: readonly string[]) => `+1${pick(npas, a)}${600 + (b % 400)}${pad4(a * 31 + b)}`;
  const partial = (npa: string) => {
    const n = `+1${npa}${pick(PARTIAL[npa]!, b)}${pad4(a)}`;
    return valid(n) ? n : `+1${npa}${pick(PARTIAL[npa]!, b)}0100`;
  };
  switch (kind) {
    case 'sub': return pick(subs, a).phoneNumber;
    case 'us': return other(US_NPAS);
    case 'ca': return other(CA_NPAS);
    case 'pr': return other(['787', '939']);
    case 'vi': return partial('340');
    case 'gu': return partial('671');
    case 'jm': return partial('876');
    case 'bs': return partial('242');
    case 'tf': return other(TOLL_FREE);
    case 'prem': return other(['900']);
    case 'svc': return pick(SERVICE_CODES, a);
  }
}

const subscriberSpec = fc.record({
  npa: fc.constantFrom(...SUB_NPAS),
  monthsBack: fc.integer({ min: 0, max: 3 }),
  day: fc.oneof(fc.integer({ min: 1, max: 31 }), fc.constantFrom(1, 28, 29, 30, 31)),
  zone: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...EDGE_ZONES) }, { weight: 2, arbitrary: fc.constantFrom(...SUPPORTED_TIME_ZONES) }),
  plan: fc.constantFrom('standard', 'standard', 'saver'),
  leapDay: fc.integer({ min: 0, max: 14 }),
});

const offset = fc.oneof(
  fc.integer({ min: -2, max: 2 }),
  fc.integer({ min: -2 * HOUR, max: 2 * HOUR }),
  fc.integer({ min: -2 * DAY, max: 2 * DAY }),
);

const callSpec = fc.record({
  src: fc.nat(),
  outsider: fc.integer({ min: 0, max: 19 }),
  target: fc.constantFrom(...TARGET_KINDS),
  a: fc.nat(),
  b: fc.nat(),
  at: fc.constantFrom('own', 'own', 'own', 'monthEnd', 'dst', 'leap', 'saver', 'uniform'),
  k: fc.nat(),
  offsetMs: offset,
  durationMs: fc.oneof(
    fc.constantFrom(0, 1, 999, 1000, 5999, 6000, 6001, 59_999, 60_000, 60_001, 120_000),
    fc.integer({ min: 0, max: 20_000 }),
    fc.integer({ min: 0, max: 3 * HOUR }),
  ),
  ingest: fc.constantFrom('prompt', 'prompt', 'prompt', 'prompt', 'late', 'nearW'),
  ingestRun: fc.nat(),
  ingestOffsetMs: fc.integer({ min: 0, max: 10 * DAY }),
  dups: fc.array(fc.record({ ingest: fc.constantFrom('soon', 'late', 'nearW'), run: fc.nat(), offsetMs: fc.integer({ min: 0, max: 40 * DAY }) }), { maxLength: 2 }),
  hasDup: fc.integer({ min: 0, max: 9 }),
});

/** The crash test's scenario (support/crash-child.ts): a few hundred subscribers billed in chunks of 25. */
export const CRASH_SCENARIO_SIZE = { minSubscribers: 250, maxSubscribers: 300, minCalls: 3000, maxCalls: 4000 };
export const CRASH_CHUNK_SIZE = 25;

export interface ScenarioSize { minSubscribers: number; maxSubscribers: number; minCalls: number; maxCalls: number }

export function scenarioArb(size: ScenarioSize): fc.Arbitrary<Scenario> {
  return fc.record({
    anchor: fc.constantFrom(...ANCHORS),
    subs: fc.array(subscriberSpec, { minLength: size.minSubscribers, maxLength: size.maxSubscribers }),
    calls: fc.array(callSpec, { minLength: size.minCalls, maxLength: size.maxCalls }),
    firstRunAfterMs: fc.integer({ min: 0, max: 25 * DAY }),
    gapsMs: fc.array(fc.integer({ min: 10 * DAY, max: 45 * DAY }), { minLength: 2, maxLength: 3 }),
    lagSeconds: fc.constantFrom(0, 0, 60),
  }).map((g) => resolve(g));
}

type ValueOf<A> = A extends fc.Arbitrary<infer T> ? T : never;
interface Generated {
  anchor: number;
  subs: ValueOf<typeof subscriberSpec>[];
  calls: ValueOf<typeof callSpec>[];
  firstRunAfterMs: number;
  gapsMs: number[];
  lagSeconds: number;
}

function resolve(g: Generated): Scenario {
  const t0 = new Date(g.anchor);
  const subscribers: NewSubscriber[] = g.subs.map((s, i) => {
    let date: string;
    // Feb 29 2024 only near 2024: later, its dozens of catch-up periods would swamp the scenario.
    if (s.leapDay === 0 && g.anchor < Date.parse('2025-01-01T00:00:00Z')) date = '2024-02-29';
    else {
      const total = t0.getUTCFullYear() * 12 + t0.getUTCMonth() - s.monthsBack;
      const y = Math.floor(total / 12), m = (total % 12) + 1;
      const dim = new Date(Date.UTC(y, m, 0)).getUTCDate();
      date = `${y}-${String(m).padStart(2, '0')}-${String(Math.min(s.day, dim)).padStart(2, '0')}`;
    }
    return { phoneNumber: subscriberNumber(s.npa, i), subscriptionDate: date, timeZone: s.zone, plan: s.plan };
  });

  const runs: ScenarioRun[] = [];
  let asOf = g.anchor + g.firstRunAfterMs;
  runs.push({ asOfMs: asOf, lagSeconds: g.lagSeconds });
  for (const gap of g.gapsMs) runs.push({ asOfMs: (asOf += gap), lagSeconds: g.lagSeconds });
  const watermarks = runs.map((r) => r.asOfMs - r.lagSeconds * 1000);
  const last = runs[runs.length - 1]!.asOfMs;

  // Each subscriber's period starts up to a little past the last run: where its calls cluster.
  const boundaries = subscribers.map((s) => {
    const out: number[] = [];
    for (let k = 0; ; k++) {
      const p = periodAt(s, k);
      out.push(p.startMs);
      if (p.startMs > last || k > 40) break;
    }
    return out;
  });
  const monthStarts: number[] = [];
  for (let m = -5; m <= 6; m++) monthStarts.push(Date.UTC(t0.getUTCFullYear(), t0.getUTCMonth() + m, 1));

  const nearby = (xs: number[]) => xs.filter((x) => x > g.anchor - 150 * DAY && x < last + 10 * DAY);
  const [dst, leap, saver] = [nearby(DST), nearby(LEAP), nearby([SAVER_CHANGE])];

  const ingestAt = (kind: string, run: number, off: number, endMs: number): number => {
    const w = pick(watermarks, run);
    if (kind === 'late') return Math.max(endMs, w + 1 + off);
    if (kind === 'nearW') return Math.max(endMs, w + (off % 3) - 1);
    return endMs + (off % (30 * 60_000)); // prompt / soon
  };

  const calls: TestCall[] = [];
  g.calls.forEach((c, i) => {
    const si = c.src % subscribers.length;
    const source = c.outsider === 0 ? targetNumber('us', c.a + 7, c.b + 3, subscribers) : subscribers[si]!.phoneNumber;
    let target = targetNumber(c.target, c.a, c.b, subscribers);
    if (target === source) target = '911';
    const near = c.at === 'dst' ? dst : c.at === 'leap' ? leap : c.at === 'saver' ? saver : [];
    const base = near.length ? pick(near, c.k)
      : c.at === 'monthEnd' ? pick(monthStarts, c.k)
        : c.at === 'uniform' ? g.anchor - 120 * DAY + (c.k % (240 * DAY))
          : pick(boundaries[si]!, c.k); // 'own', and the special days when none is near this scenario
    const startMs = Math.max(Date.parse('2023-01-01T00:00:00Z'), base + c.offsetMs);
    const endMs = startMs + c.durationMs;
    const first: TestCall = { callId: `c${i}`, source, target, startMs, endMs, ingestedAtMs: ingestAt(c.ingest, c.ingestRun, c.ingestOffsetMs, endMs) };
    calls.push(first);
    if (c.hasDup === 0) for (const d of c.dups) calls.push({ ...first, ingestedAtMs: ingestAt(d.ingest, d.run, d.offsetMs, endMs) });
  });
  return { subscribers, calls, runs };
}
