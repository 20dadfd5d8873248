/**
 * Every job reads time through a Clock so that it can run "as of" any
 * instant: production uses the system clock, tests and replays a fixed or
 * hand-advanced one.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch, UTC. */
  now(): number;
}

export const systemClock: Clock = Object.freeze({ now: () => Date.now() });

export function fixedClock(at: number | string | Date): Clock & { set(at: number | string | Date): void; advance(ms: number): void } {
  let t = toMillis(at);
  return {
    now: () => t,
    set: (v) => { t = toMillis(v); },
    advance: (ms) => { t += ms; },
  };
}

export function toMillis(v: number | string | Date): number {
  const ms = typeof v === 'number' ? v : typeof v === 'string' ? Date.parse(v) : v.getTime();
  if (!Number.isFinite(ms)) throw new TypeError(`not an instant: ${String(v)}`);
  return ms;
}
