/**
 * Rate-limited logging for conditions that can repeat on every call or
 * every check (no state loaded, Redis down): the first occurrence is logged
 * at once, later ones at most once per interval with the count suppressed.
 */
import type { Clock } from '../core/clock.ts';

export type Throttled = (emit: (suppressed: number) => void) => void;

export function throttled(clock: Clock, intervalMs: number): Throttled {
  let last = -Infinity;
  let suppressed = 0;
  return (emit) => {
    const now = clock.now();
    if (now - last < intervalMs) { suppressed++; return; }
    last = now;
    const n = suppressed;
    suppressed = 0;
    emit(n);
  };
}
