/**
 * The admission benchmark's data, identical in every process: a population
 * of subscriber numbers (every 20th one blocked) and a fixed mix of
 * CanPlaceCall requests over it, each with the answer the rules give.
 */
import { CallerState, decide, isInvalid, type Decision } from '../../admission/domain/decide.ts';
import { parseNumber } from '../../core/numbers/index.ts';

/** Area codes of real US and Canadian cities. */
const NPAS = [
  '201', '202', '205', '206', '212', '213', '214', '215', '216', '303', '305', '310', '312', '313', '314', '323', '404', '405',
  '412', '415', '416', '469', '503', '504', '512', '514', '602', '604', '612', '613', '617', '647', '702', '704', '713', '718',
  '720', '778', '801', '804', '813', '818', '905', '916', '917', '949',
];

export const BLOCKED_EVERY = 20;

/** The i-th subscriber's number: distinct for i < 46 × 8,000,000. */
export function subscriberNumber(i: number): string {
  const npa = NPAS[i % NPAS.length]!;
  const line = 2_000_000 + ((Math.floor(i / NPAS.length) * 7919) % 8_000_000);
  return `+1${npa}${line}`;
}

export const isBlocked = (i: number) => i % BLOCKED_EVERY === 0;

export interface Request { source_number: string; target_number: string; expected: Decision }

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `size` requests over a population of `subscribers`: 4% of callers unknown
 * (numbers past the population), the rest subscribers (5% of them blocked);
 * targets 1% 911, 1% 611, 1% out of area (+44), the rest subscriber numbers.
 */
export function requestMix(subscribers: number, size = 8192, seed = 42): Request[] {
  const rnd = mulberry32(seed);
  const out: Request[] = [];
  const policy = { unknownSubscriber: 'deny', noState: 'allow' } as const;
  while (out.length < size) {
    const unknown = rnd() < 0.04;
    const i = unknown ? subscribers + Math.floor(rnd() * subscribers) : Math.floor(rnd() * subscribers);
    const source = subscriberNumber(i);
    const p = parseNumber(source);
    if (p.kind !== 'nanp' || p.tollFree || p.premium) continue; // a number libphonenumber rejects cannot be a caller
    const r = rnd();
    const target = r < 0.01 ? '911' : r < 0.02 ? '611' : r < 0.03 ? '+441632960000' : subscriberNumber(Math.floor(rnd() * subscribers));
    const state = unknown ? CallerState.Unknown : isBlocked(i) ? CallerState.Blocked : CallerState.Active;
    const expected = decide(source, target, () => state, policy);
    if (isInvalid(expected)) continue; // an invalid target number: keep the mix to answered calls
    out.push({ source_number: source, target_number: target, expected });
  }
  return out;
}
