/**
 * The tariff: plans, their dated versions, and the rating rules that both
 * the ClickHouse path and the reference rater follow. Pure, except
 * loadTariff, which reads the versioned file billing/tariff/tariff.json.
 *
 * Units (all integers):
 * - money on bills: cents;
 * - rates: milli-cents per minute (1 cent = 1000), so 2.5 ¢/min is 2500 and
 *   0.125 ¢/min is 125;
 * - a call's charge: billable seconds × rate, in "charge units" of
 *   1/60,000 cent (a milli-cent per minute for one second), exact, no
 *   division per call.
 *
 * Rules (mirror them exactly in SQL):
 * - version: the one whose effectiveFrom is the latest at or before the
 *   call's START instant; the monthly line uses the version in effect at the
 *   period's start, and line descriptions come from that version too;
 * - billable seconds = duration rounded UP to the class increment:
 *     intDiv(duration_ms + inc*1000 - 1, inc*1000) * inc   (0 ms bills 0 s);
 * - charge units = billable_seconds * rate_milli_cents_per_minute;
 * - a line's amount = its calls' charge units summed, then rounded ONCE,
 *   half up, to the cent:  intDiv(sum + 30000, 60000);
 * - a line's minutes = its billable seconds summed, divided by 60, rounded UP
 *   to a whole minute for display: intDiv(sum_seconds + 59, 60). With 60 s
 *   increments this is exact; on 6 s plans the exact figure is the line's
 *   billableSeconds, which is what the amount is computed from.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DomainError, invalid } from '../../core/errors.ts';

export const CALL_CLASSES = ['domestic', 'cross_border', 'nanp_international', 'premium', 'toll_free', 'service_code'] as const;
export type CallClass = (typeof CALL_CLASSES)[number];

/**
 * Bill line kinds, in the order lines appear on a bill: the monthly fee, one
 * line per call class with calls in the period (free classes included), then
 * one late_usage line per earlier period with calls that arrived after that
 * period's bill (all classes together, rounded once).
 */
export const LINE_KINDS = ['monthly_service', ...CALL_CLASSES, 'late_usage'] as const;
export type LineKind = (typeof LINE_KINDS)[number];

/** The description of a late_usage line: the local bill dates of the period the calls belong to. */
export const lateUsageDescription = (period: { readonly startLocal: string; readonly endLocal: string }) =>
  `Late usage for period ${period.startLocal} to ${period.endLocal}`;

export const MILLI_CENTS_PER_CENT = 1000;
export const SECONDS_PER_MINUTE = 60;
/** Charge units (billable second × milli-cent per minute) in one cent. */
export const CHARGE_UNITS_PER_CENT = MILLI_CENTS_PER_CENT * SECONDS_PER_MINUTE;
export const DEFAULT_INCREMENT_SECONDS = 60;
export const MAX_INCREMENT_SECONDS = 3600;
/** Keeps one call's charge (≤ 24 h × rate) far inside Number's exact integers. */
export const MAX_RATE_MILLI_CENTS_PER_MINUTE = 1_000_000_000;

export const DEFAULT_TARIFF_PATH = fileURLToPath(new URL('../tariff/tariff.json', import.meta.url));

export interface ClassRate {
  readonly rateMilliCentsPerMinute: number;
  readonly incrementSeconds: number;
  readonly description: string;
}

export interface TariffVersion {
  /** As written in the file (RFC 3339 with offset). */
  readonly effectiveFrom: string;
  readonly effectiveFromMs: number;
  readonly monthlyCents: number;
  readonly monthlyDescription: string;
  readonly classes: Readonly<Record<CallClass, ClassRate>>;
}

export interface Plan {
  readonly id: string;
  readonly name: string;
  readonly currency: string;
  /** Ascending by effectiveFromMs. */
  readonly versions: readonly TariffVersion[];
}

export interface Tariff {
  readonly formatVersion: 1;
  readonly defaultPlan: string;
  readonly plans: Readonly<Record<string, Plan>>;
}

/** A tariff that failed validation: every problem, each naming its path. */
export class TariffError extends DomainError {
  readonly problems: readonly string[];
  constructor(source: string, problems: string[]) {
    super('invalid', 'INVALID_TARIFF', `tariff ${source} is invalid:\n  - ${problems.join('\n  - ')}`, { field: 'tariff' });
    this.name = 'TariffError';
    this.problems = Object.freeze([...problems]);
  }
}

// ---- rating helpers (mirrored in SQL) ----

/** Duration rounded up to the increment, in seconds; 0 ms bills 0 s. */
export function billableSeconds(durationMs: number, incrementSeconds: number): number {
  if (!Number.isSafeInteger(durationMs) || durationMs < 0) throw invalid('durationMs', `must be a non-negative integer, got ${durationMs}`);
  if (!Number.isInteger(incrementSeconds) || incrementSeconds < 1) throw invalid('incrementSeconds', `must be a positive integer, got ${incrementSeconds}`);
  const step = incrementSeconds * 1000;
  return Math.ceil(durationMs / step) * incrementSeconds;
}

/** One call's exact charge, in charge units (1/60,000 cent). */
export function callChargeUnits(billableSecs: number, rateMilliCentsPerMinute: number): number {
  return billableSecs * rateMilliCentsPerMinute;
}

/** A line's summed charge units rounded once, half up, to whole cents. */
export function lineAmountCents(sumChargeUnits: bigint | number): number {
  const sum = typeof sumChargeUnits === 'bigint' ? sumChargeUnits : toBigInt(sumChargeUnits);
  if (sum < 0n) throw invalid('sumChargeUnits', `must not be negative, got ${sum}`);
  const unit = BigInt(CHARGE_UNITS_PER_CENT);
  return Number((sum + unit / 2n) / unit);
}

function toBigInt(n: number): bigint {
  if (!Number.isSafeInteger(n)) throw invalid('sumChargeUnits', `must be an integer, got ${n}`);
  return BigInt(n);
}

/** A line's billable seconds shown as whole minutes, rounded up. */
export function displayMinutes(billableSecs: number): number {
  return Math.ceil(billableSecs / SECONDS_PER_MINUTE);
}

/** The version in effect at an instant (latest effectiveFrom <= instant); undefined before the first. */
export function tariffVersionAt(plan: Plan, instantMs: number): TariffVersion | undefined {
  let found: TariffVersion | undefined;
  for (const v of plan.versions) {
    if (v.effectiveFromMs <= instantMs) found = v;
    else break;
  }
  return found;
}

export function planOf(tariff: Tariff, planId: string): Plan {
  if (!Object.hasOwn(tariff.plans, planId)) {
    throw invalid('plan', `unknown plan ${JSON.stringify(planId)}; known plans: ${Object.keys(tariff.plans).join(', ')}`, 'UNKNOWN_PLAN');
  }
  return tariff.plans[planId]!;
}

// ---- loading and validation ----

export function loadTariff(path: string = DEFAULT_TARIFF_PATH): Tariff {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new TariffError(path, [`cannot read the file: ${(e as Error).message}`]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new TariffError(path, [`not valid JSON: ${(e as Error).message}`]);
  }
  return parseTariff(raw, path);
}

const PLAN_ID = /^[a-z][a-z0-9_]{0,31}$/;
const CURRENCY = /^[A-Z]{3}$/;
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-](\d{2}):(\d{2}))$/;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates a parsed tariff document; throws TariffError listing every problem. */
export function parseTariff(raw: unknown, source = 'tariff'): Tariff {
  const problems: string[] = [];
  const bad = (path: string, reason: string) => problems.push(`${path}: ${reason}`);
  const onlyKeys = (o: Obj, path: string, allowed: readonly string[]) => {
    for (const k of Object.keys(o)) if (k !== '$comment' && !allowed.includes(k)) bad(path ? `${path}.${k}` : k, 'unknown field');
  };
  const text = (o: Obj, key: string, path: string): string => {
    const v = o[key];
    if (typeof v !== 'string' || v.trim() === '') {
      bad(`${path}.${key}`, 'must be a non-empty string');
      return '';
    }
    return v;
  };
  const int = (o: Obj, key: string, path: string, min: number, max: number, fallback?: number): number => {
    const v = o[key] === undefined ? fallback : o[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      const limit = max >= Number.MAX_SAFE_INTEGER ? '' : ` at most ${max}`;
      bad(`${path}.${key}`, min === 0 ? `must be a non-negative integer${limit}` : `must be an integer ${min}-${max}`);
      return 0;
    }
    return v;
  };

  if (!isObj(raw)) throw new TariffError(source, ['(root): must be a JSON object']);
  onlyKeys(raw, '', ['formatVersion', 'defaultPlan', 'plans']);
  if (raw.formatVersion !== 1) bad('formatVersion', 'must be 1');

  const plans: Record<string, Plan> = {};
  if (!isObj(raw.plans) || Object.keys(raw.plans).length === 0) bad('plans', 'must be an object with at least one plan');
  else {
    for (const [id, p] of Object.entries(raw.plans)) {
      const path = `plans.${id}`;
      if (!PLAN_ID.test(id)) bad(path, 'plan id must be lowercase letters, digits and _ (at most 32, starting with a letter)');
      if (!isObj(p)) {
        bad(path, 'must be an object');
        continue;
      }
      onlyKeys(p, path, ['name', 'currency', 'versions']);
      const name = text(p, 'name', path);
      const currency = typeof p.currency === 'string' && CURRENCY.test(p.currency) ? p.currency : (bad(`${path}.currency`, 'must be an ISO 4217 code such as USD'), '');
      const versions: TariffVersion[] = [];
      if (!Array.isArray(p.versions) || p.versions.length === 0) bad(`${path}.versions`, 'must be a non-empty array');
      else {
        p.versions.forEach((v: unknown, i: number) => {
          const vp = `${path}.versions[${i}]`;
          const version = parseVersion(v, vp, { bad, onlyKeys, text, int });
          if (!version) return;
          const prev = versions[versions.length - 1];
          if (prev && Number.isFinite(prev.effectiveFromMs) && !(version.effectiveFromMs > prev.effectiveFromMs)) {
            bad(`${vp}.effectiveFrom`, `must be later than versions[${i - 1}].effectiveFrom (${prev.effectiveFrom})`);
          }
          versions.push(version);
        });
      }
      plans[id] = { id, name, currency, versions };
    }
  }
  const defaultPlan = typeof raw.defaultPlan === 'string' ? raw.defaultPlan : '';
  if (!defaultPlan) bad('defaultPlan', 'must name a plan');
  else if (isObj(raw.plans) && !Object.hasOwn(raw.plans, defaultPlan)) bad('defaultPlan', `names no plan in plans: ${JSON.stringify(defaultPlan)}`);

  if (problems.length > 0) throw new TariffError(source, problems);
  return deepFreeze({ formatVersion: 1, defaultPlan, plans });
}

interface Checks {
  bad(path: string, reason: string): void;
  onlyKeys(o: Obj, path: string, allowed: readonly string[]): void;
  text(o: Obj, key: string, path: string): string;
  int(o: Obj, key: string, path: string, min: number, max: number, fallback?: number): number;
}

function parseVersion(v: unknown, path: string, c: Checks): TariffVersion | undefined {
  if (!isObj(v)) {
    c.bad(path, 'must be an object');
    return undefined;
  }
  c.onlyKeys(v, path, ['effectiveFrom', 'monthlyCents', 'monthlyDescription', 'classes']);
  const effectiveFrom = typeof v.effectiveFrom === 'string' ? v.effectiveFrom : '';
  const effectiveFromMs = parseInstant(effectiveFrom);
  if (!Number.isFinite(effectiveFromMs)) c.bad(`${path}.effectiveFrom`, 'must be an RFC 3339 instant with an offset, e.g. 2025-07-01T00:00:00-04:00');
  const monthlyCents = c.int(v, 'monthlyCents', path, 0, Number.MAX_SAFE_INTEGER);
  const monthlyDescription = c.text(v, 'monthlyDescription', path);
  const classes = {} as Record<CallClass, ClassRate>;
  const cp = `${path}.classes`;
  if (!isObj(v.classes)) c.bad(cp, `must be an object with ${CALL_CLASSES.join(', ')}`);
  else {
    for (const k of Object.keys(v.classes)) {
      if (!(CALL_CLASSES as readonly string[]).includes(k) && k !== '$comment') c.bad(`${cp}.${k}`, `unknown call class; expected one of ${CALL_CLASSES.join(', ')}`);
    }
    for (const cls of CALL_CLASSES) {
      const r = v.classes[cls];
      const rp = `${cp}.${cls}`;
      if (!isObj(r)) {
        c.bad(rp, r === undefined ? 'is required' : 'must be an object');
        continue;
      }
      c.onlyKeys(r, rp, ['rateMilliCentsPerMinute', 'incrementSeconds', 'description']);
      classes[cls] = {
        rateMilliCentsPerMinute: c.int(r, 'rateMilliCentsPerMinute', rp, 0, MAX_RATE_MILLI_CENTS_PER_MINUTE),
        incrementSeconds: c.int(r, 'incrementSeconds', rp, 1, MAX_INCREMENT_SECONDS, DEFAULT_INCREMENT_SECONDS),
        description: c.text(r, 'description', rp),
      };
    }
  }
  return { effectiveFrom, effectiveFromMs, monthlyCents, monthlyDescription, classes };
}

/** RFC 3339 with an explicit offset, with the calendar checked (Date.parse alone accepts Feb 30). */
function parseInstant(s: string): number {
  const m = RFC3339.exec(s);
  if (!m) return NaN;
  const [y, mo, d, h, mi, sec] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number];
  const dim = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  if (mo < 1 || mo > 12 || d < 1 || d > dim || h > 23 || mi > 59 || sec > 59) return NaN;
  if (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return NaN;
  return Date.parse(s.toUpperCase());
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
