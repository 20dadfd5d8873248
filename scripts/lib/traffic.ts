/**
 * Deterministic, realistic call traffic for demos, tests and benchmarks: N
 * subscribers across real US and Canadian area codes, and a month of their
 * calls with a daily rhythm in each subscriber's local time, quieter
 * weekends, one sudden peak hour, a mix of call classes, log-normal
 * durations, some resent duplicates and some invalid events.
 *
 * One seed gives the same subscribers and the same events every run. Events
 * come out hour by hour in start order, in batches, so a month of a million
 * calls never sits in memory at once (one hour of calls does).
 */
import { parseNumber } from '../../core/numbers/index.ts';
import { DateTime } from 'luxon';
import { createRng, searchCumulative, type Rng } from './prng.ts';
import {
  HOME_AREAS, HOUR_WEIGHTS, NANP_INTERNATIONAL, PREMIUM, SERVICE_CODE_MIX, TOLL_FREE, WEEKEND_FACTOR,
  type AreaCode, type HomeCountry,
} from './areas.ts';

export interface Subscriber {
  /** E.164, +1NPANXXXXXX. */
  phone: string;
  country: HomeCountry;
  /** IANA zone of the subscriber (matches the area code). */
  zone: string;
  /** When the subscription started (UTC ms); the subscriber makes no call before it. */
  subscribedAt: number;
  /** The same instant as a local calendar date in `zone` (anniversary billing counts from it). */
  subscribedOn: string;
}

/** What the generator meant a target to be (the ingest service derives its own class). */
export type TargetKind = 'domestic' | 'cross_border' | 'nanp_international' | 'toll_free' | 'premium' | 'service_code';
export type InvalidKind = 'bad_number' | 'end_before_start' | 'non_nanp' | 'missing_call_id' | 'future_start';

export interface TrafficEvent {
  call_id: string;
  source_number: string;
  target_number: string;
  /** UTC ms; null never happens in generated traffic but files may lack a timestamp. */
  startMs: number;
  endMs: number;
  /** 'call': first sending of a valid call; 'duplicate': the same call resent; 'invalid': must be rejected. */
  kind: 'call' | 'duplicate' | 'invalid';
  target: TargetKind;
  invalid?: InvalidKind;
  /** The field the service should name when it rejects an invalid event. */
  invalidField?: 'call_id' | 'source_number' | 'target_number' | 'start' | 'end';
  /** Zone of the calling subscriber, so writers can print local offsets. */
  zone: string;
}

export interface TrafficOptions {
  seed?: number;
  /** Seed of the calls alone (default: seed): several shards of calls among the same subscribers. */
  eventSeed?: number;
  subscribers: number;
  /** Distinct valid calls (duplicates and invalid events come on top). */
  calls: number;
  /** UTC ms range the calls start in, [from, to). */
  from: number;
  to: number;
  /** Events per yielded batch (default 1000). */
  batchSize?: number;
  /** Share of valid calls sent a second time (default 0.01). */
  duplicateRate?: number;
  /** Invalid events per valid call (default 0.002). */
  invalidRate?: number;
  /** One hour at `multiplier` times its normal rate; default mid-month 18:00 New York at 8×. false: none. */
  peak?: { at: number; multiplier: number } | false;
  /**
   * The receiving service's current time: no valid call ends after it, and
   * future-start invalid events start 1–30 days after it. Default: `to` + 1 day.
   */
  serviceNow?: number;
  /** call_id prefix (default `cdr-<seed>`). */
  callIdPrefix?: string;
}

export interface TrafficStats {
  events: number;
  calls: number;
  duplicates: number;
  invalid: number;
  invalidByKind: Record<InvalidKind, number>;
  byTarget: Record<TargetKind, number>;
}

export interface Traffic {
  readonly subscribers: readonly Subscriber[];
  /** Start of the peak hour (UTC ms), or undefined. */
  readonly peakHour: number | undefined;
  /** Runs the month from the start; the same sequence every call. */
  batches(): Generator<TrafficEvent[]>;
  /** Counts of the last completed (or running) batches() pass. */
  readonly stats: TrafficStats;
}

const HOUR = 3_600_000;
const DAY = 86_400_000;
const RESERVED_NXX = new Set([555, 950, 958, 959, 976]);

/** A geographic number of the NPA that core/numbers (libphonenumber-js max metadata) accepts as valid for `region`. */
function randomNumber(rng: Rng, npa: string, region: string): string {
  for (let i = 0; i < 1000; i++) {
    const nxx = rng.int(200, 999);
    if (nxx % 100 === 11 || RESERVED_NXX.has(nxx)) continue;
    const e164 = `+1${npa}${nxx}${String(rng.int(0, 9999)).padStart(4, '0')}`;
    const p = parseNumber(e164);
    if (p.kind === 'nanp' && p.region === region && !p.tollFree && !p.premium) return e164;
  }
  throw new Error(`no valid number found for NPA ${npa} (${region})`);
}

function cumulative(weights: readonly number[]): Float64Array {
  const cum = new Float64Array(weights.length);
  let s = 0;
  weights.forEach((w, i) => { s += w; cum[i] = s; });
  return cum;
}

function pickWeighted<T>(rng: Rng, xs: readonly T[], cum: Float64Array): T {
  return xs[searchCumulative(cum, rng.next() * cum[cum.length - 1]!)]!;
}

interface ZoneGroup {
  zone: string;
  /** Members sorted by subscribedAt, with cumulative activity in that order. */
  members: Subscriber[];
  since: Float64Array;
  cumActivity: Float64Array;
}

function makeSubscribers(rng: Rng, n: number, from: number, to: number): { subs: Subscriber[]; activity: number[] } {
  const areaCum = cumulative(HOME_AREAS.map((x) => x.weight));
  const seen = new Set<string>();
  const zonesSeen = new Set<string>();
  const subs: Subscriber[] = [];
  const activity: number[] = [];
  while (subs.length < n) {
    const area: AreaCode = pickWeighted(rng, HOME_AREAS, areaCum);
    const phone = randomNumber(rng, area.npa, area.region);
    if (seen.has(phone)) continue;
    seen.add(phone);
    // The first subscriber of each zone predates the month, so every zone
    // with subscribers always has someone able to call.
    const early = !zonesSeen.has(area.zone) || rng.chance(0.92);
    zonesSeen.add(area.zone);
    const subscribedAt = early
      ? from - rng.int(1, 3 * 365) * DAY - rng.int(0, DAY - 1)
      : from + Math.floor(rng.next() * Math.max(1, to - from - DAY));
    const subscribedOn = DateTime.fromMillis(subscribedAt, { zone: area.zone }).toISODate()!;
    subs.push({ phone, country: area.country, zone: area.zone, subscribedAt, subscribedOn });
    // Log-normal activity, and a few very heavy callers (small businesses).
    activity.push(Math.exp(0.9 * rng.normal()) * (rng.chance(0.002) ? 30 : 1));
  }
  return { subs, activity };
}

function groupByZone(subs: Subscriber[], activity: number[]): ZoneGroup[] {
  const byZone = new Map<string, number[]>();
  subs.forEach((s, i) => { const l = byZone.get(s.zone) ?? []; l.push(i); byZone.set(s.zone, l); });
  return [...byZone.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([zone, idx]) => {
    idx.sort((i, j) => subs[i]!.subscribedAt - subs[j]!.subscribedAt || i - j);
    return {
      zone,
      members: idx.map((i) => subs[i]!),
      since: Float64Array.from(idx.map((i) => subs[i]!.subscribedAt)),
      cumActivity: cumulative(idx.map((i) => activity[i]!)),
    };
  });
}

/** Local hour of day and weekend-ness of `ms` in `zone`. */
function localHour(ms: number, zone: string): { hour: number; weekend: boolean } {
  const d = DateTime.fromMillis(ms, { zone });
  return { hour: d.hour, weekend: d.weekday >= 6 };
}

function defaultPeak(from: number, to: number): number | undefined {
  for (let h = Math.floor((from + (to - from) / 2) / HOUR) * HOUR; h < to; h += HOUR) {
    const d = DateTime.fromMillis(h, { zone: 'America/New_York' });
    if (d.hour === 18 && d.weekday <= 5) return h;
  }
  return undefined;
}

function durationMs(rng: Rng, target: TargetKind): number {
  if (target !== 'service_code' && rng.chance(0.06)) return 0; // not answered
  if (rng.chance(0.001)) return rng.int(2 * HOUR, 10 * HOUR); // left open for hours
  const median = target === 'toll_free' ? 240 : target === 'service_code' ? 120 : 75;
  const s = Math.min(4 * 3600, median * Math.exp(1.1 * rng.normal()));
  return Math.max(1000, Math.round(s * 1000));
}

export function createTraffic(opts: TrafficOptions): Traffic {
  const seed = opts.seed ?? 1;
  const { from, to } = opts;
  if (!(to > from)) throw new RangeError('traffic: `to` must be after `from`');
  if (!(opts.subscribers >= 1)) throw new RangeError('traffic: at least one subscriber');
  const batchSize = opts.batchSize ?? 1000;
  const duplicateRate = opts.duplicateRate ?? 0.01;
  const invalidRate = opts.invalidRate ?? 0.002;
  const serviceNow = opts.serviceNow ?? to + DAY;
  const prefix = opts.callIdPrefix ?? `cdr-${seed}`;

  const rng = createRng(seed);
  const { subs, activity } = makeSubscribers(rng, opts.subscribers, from, to);
  const groups = groupByZone(subs, activity);
  const totalActivity = activity.reduce((x, y) => x + y, 0);

  // Numbers people call: a pool per country (plus other subscribers, on-net).
  const poolSize = Math.min(10_000, Math.max(200, opts.subscribers));
  const pools: Record<HomeCountry, string[]> = { US: [], CA: [] };
  const onNet: Record<HomeCountry, string[]> = { US: [], CA: [] };
  for (const s of subs) onNet[s.country].push(s.phone);
  for (const c of ['US', 'CA'] as const) {
    const areas = HOME_AREAS.filter((x) => x.country === c);
    const cum = cumulative(areas.map((x) => x.weight));
    for (let i = 0; i < poolSize; i++) { const ar = pickWeighted(rng, areas, cum); pools[c].push(randomNumber(rng, ar.npa, ar.region)); }
  }
  const intlPool = Array.from({ length: Math.min(2000, poolSize) }, () => { const x = rng.pick(NANP_INTERNATIONAL); return randomNumber(rng, x.npa, x.region); });
  const serviceCum = cumulative(SERVICE_CODE_MIX.map((x) => x.weight));

  const peakHour = opts.peak === false ? undefined : opts.peak ? Math.floor(opts.peak.at / HOUR) * HOUR : defaultPeak(from, to);
  const peakMult = opts.peak ? opts.peak.multiplier : 8;

  // Expected calls per (hour, zone): zone share × local-hour weight × weekend × peak × covered part of the hour.
  const firstHour = Math.floor(from / HOUR) * HOUR;
  const hours = Math.ceil((to - firstHour) / HOUR);
  const weights = new Float64Array(hours * groups.length);
  let weightSum = 0;
  for (let h = 0; h < hours; h++) {
    const hs = firstHour + h * HOUR;
    const covered = (Math.min(to, hs + HOUR) - Math.max(from, hs)) / HOUR;
    groups.forEach((g, z) => {
      const share = g.cumActivity[g.cumActivity.length - 1]! / totalActivity;
      const { hour, weekend } = localHour(hs + HOUR / 2, g.zone);
      const w = share * HOUR_WEIGHTS[hour]! * (weekend ? WEEKEND_FACTOR : 1) * (hs === peakHour ? peakMult : 1) * covered;
      weights[h * groups.length + z] = w;
      weightSum += w;
    });
  }

  const stats: TrafficStats = emptyStats();

  function* batches(): Generator<TrafficEvent[]> {
    // Same sequence on every pass: the per-event randomness restarts from the seed.
    const r = createRng((opts.eventSeed ?? seed) ^ 0x5bd1e995);
    Object.assign(stats, emptyStats());
    let seq = 0;
    let badSeq = 0;
    let cumExpected = 0;
    let emittedCalls = 0;
    let batchNo = 0;
    let out: TrafficEvent[] = [];
    // Resends wait a few batches (or none: resent within the same request).
    const resends = new Map<number, TrafficEvent[]>();
    const push = (e: TrafficEvent) => {
      stats.events++;
      if (e.kind === 'call') { stats.calls++; stats.byTarget[e.target]++; }
      else if (e.kind === 'duplicate') stats.duplicates++;
      else { stats.invalid++; stats.invalidByKind[e.invalid!]++; }
      out.push(e);
    };
    const flushIfFull = function* (): Generator<TrafficEvent[]> {
      if (out.length < batchSize) return;
      yield out;
      out = [];
      batchNo++;
      for (const e of resends.get(batchNo) ?? []) push(e);
      resends.delete(batchNo);
    };

    for (let h = 0; h < hours; h++) {
      const hs = firstHour + h * HOUR;
      const lo = Math.max(from, hs), hi = Math.min(to, hs + HOUR);
      const hourEvents: TrafficEvent[] = [];
      for (let z = 0; z < groups.length; z++) {
        cumExpected += weights[h * groups.length + z]!;
        const target = Math.round((cumExpected / weightSum) * opts.calls);
        const n = target - emittedCalls;
        emittedCalls = target;
        if (n <= 0) continue;
        const g = groups[z]!;
        // Subscribers who had joined by the start of this hour.
        let active = searchCumulative(g.since, lo);
        if (g.since[active]! <= lo) active = g.members.length;
        for (let i = 0; i < n; i++) {
          const sub = g.members[searchCumulative(g.cumActivity, r.next() * g.cumActivity[active - 1]!, active)]!;
          hourEvents.push(makeCall(r, sub, lo + Math.floor(r.next() * (hi - lo)), `${prefix}-${String(seq++).padStart(8, '0')}`));
        }
      }
      hourEvents.sort((x, y) => x.startMs - y.startMs);
      for (const e of hourEvents) {
        push(e);
        if (r.chance(duplicateRate)) {
          const due = batchNo + r.int(0, 3);
          const dup: TrafficEvent = { ...e, kind: 'duplicate' };
          if (due === batchNo) push(dup); else { const l = resends.get(due) ?? []; l.push(dup); resends.set(due, l); }
        }
        if (r.chance(invalidRate)) push(makeInvalid(r, e, `${prefix}-bad-${String(badSeq++).padStart(6, '0')}`));
        yield* flushIfFull();
      }
    }
    for (const k of [...resends.keys()].sort((x, y) => x - y)) for (const e of resends.get(k)!) push(e);
    resends.clear();
    if (out.length) yield out;
  }

  function makeCall(r: Rng, sub: Subscriber, startMs: number, callId: string): TrafficEvent {
    const u = r.next();
    let target: TargetKind;
    let num: string;
    const other: HomeCountry = sub.country === 'US' ? 'CA' : 'US';
    if (u < 0.79) { target = 'domestic'; num = r.chance(0.35) ? r.pick(onNet[sub.country]) : r.pick(pools[sub.country]); }
    else if (u < 0.87) { target = 'cross_border'; num = onNet[other].length && r.chance(0.35) ? r.pick(onNet[other]) : r.pick(pools[other]); }
    else if (u < 0.90) { target = 'nanp_international'; num = r.pick(intlPool); }
    else if (u < 0.97) { target = 'toll_free'; num = `+1${r.pick(TOLL_FREE)}${r.int(200, 999)}${String(r.int(0, 9999)).padStart(4, '0')}`; }
    else if (u < 0.975) { target = 'premium'; num = `+1${r.pick(PREMIUM)}${r.int(200, 999)}${String(r.int(0, 9999)).padStart(4, '0')}`; }
    else { target = 'service_code'; num = pickWeighted(r, SERVICE_CODE_MIX, serviceCum).code; }
    if (num === sub.phone) { target = 'toll_free'; num = '+18005550199'; }
    const endMs = Math.min(startMs + durationMs(r, target), Math.max(startMs, serviceNow));
    return { call_id: callId, source_number: sub.phone, target_number: num, startMs, endMs, kind: 'call', target, zone: sub.zone };
  }

  function makeInvalid(r: Rng, base: TrafficEvent, callId: string): TrafficEvent {
    const e: TrafficEvent = { ...base, call_id: callId, kind: 'invalid' };
    switch (r.int(0, 4)) {
      case 0:
        e.invalid = 'bad_number';
        if (r.chance(0.5)) { e.invalidField = 'target_number'; e.target_number = r.pick(['+1123456789', '+1212555', 'unknown', '+1212555010']); }
        else { e.invalidField = 'source_number'; e.source_number = r.pick(['', '+10005551234', 'anonymous']); }
        break;
      case 1:
        e.invalid = 'end_before_start'; e.invalidField = 'end';
        e.endMs = e.startMs - r.int(1000, 600_000);
        break;
      case 2:
        e.invalid = 'non_nanp'; e.invalidField = 'target_number';
        e.target_number = `+44207946${String(r.int(0, 9999)).padStart(4, '0')}`;
        break;
      case 3:
        e.invalid = 'missing_call_id'; e.invalidField = 'call_id';
        e.call_id = '';
        break;
      default:
        e.invalid = 'future_start'; e.invalidField = 'start';
        e.startMs = serviceNow + r.int(1, 30) * DAY;
        e.endMs = e.startMs + 60_000;
    }
    return e;
  }

  return { subscribers: subs, peakHour, batches, stats };
}

function emptyStats(): TrafficStats {
  return {
    events: 0, calls: 0, duplicates: 0, invalid: 0,
    invalidByKind: { bad_number: 0, end_before_start: 0, non_nanp: 0, missing_call_id: 0, future_start: 0 },
    byTarget: { domestic: 0, cross_border: 0, nanp_international: 0, toll_free: 0, premium: 0, service_code: 0 },
  };
}

/** The first instant of the last full calendar month (UTC) before `now`, and the first of the next. */
export function lastFullMonth(now: number): { from: number; to: number; label: string } {
  const d = new Date(now);
  const to = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  const from = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1);
  return { from, to, label: new Date(from).toISOString().slice(0, 7) };
}

/** RFC 3339 with the zone's offset at that instant, e.g. 2026-10-14T18:03:07.250-04:00. */
export function formatInstant(ms: number, zone = 'UTC'): string {
  if (zone === 'UTC') return new Date(ms).toISOString();
  return DateTime.fromMillis(ms, { zone }).toISO({ suppressMilliseconds: false, includeOffset: true })!;
}
