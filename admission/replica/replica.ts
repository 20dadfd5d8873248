/**
 * One snapshot of the admission state (subscriber numbers, blocked numbers)
 * as loaded from Redis under one epoch, then kept current by the change
 * messages of core/redis/layout.ts.
 */
import type { ChangeOp } from '../../core/redis/layout.ts';
import { CallerState, type CallerLookup } from '../domain/decide.ts';
import { NumberSet, numberKey } from './number-set.ts';

export type Change = { op: ChangeOp; number: string } | { op: 'resync'; epoch: string };

const OPS: ReadonlySet<string> = new Set<ChangeOp>(['sub+', 'sub-', 'block', 'unblock']);

/** "<op> <number>" or "resync <epoch>"; undefined for anything else. */
export function parseChange(message: string): Change | undefined {
  const sp = message.indexOf(' ');
  if (sp <= 0 || sp === message.length - 1) return undefined;
  const op = message.slice(0, sp);
  const arg = message.slice(sp + 1);
  if (op === 'resync') return { op, epoch: arg };
  if (!OPS.has(op) || numberKey(arg) < 0) return undefined;
  return { op: op as ChangeOp, number: arg };
}

export class Replica {
  /**
   * The hot path's lookup: the number is parsed once and looked up in both
   * sets by key. A bound arrow so `decide` can take it as a plain function.
   */
  readonly lookup: CallerLookup;

  constructor(readonly subs: NumberSet, readonly blocked: NumberSet, readonly epoch: string) {
    this.lookup = (e164) => {
      // The two parts as small integers (nothing boxed); anything but "+1" and ten digits is nobody.
      if (e164.length !== 12 || e164.charCodeAt(0) !== 43 || e164.charCodeAt(1) !== 49) return CallerState.Unknown;
      let npa = 0;
      let line = 0;
      for (let i = 2; i < 12; i++) {
        const d = e164.charCodeAt(i) - 48;
        if (d < 0 || d > 9) return CallerState.Unknown;
        if (i < 5) npa = npa * 10 + d;
        else line = line * 10 + d;
      }
      if (!subs.hasParts(npa, line)) return CallerState.Unknown;
      return blocked.hasParts(npa, line) ? CallerState.Blocked : CallerState.Active;
    };
  }

  static empty(epoch = ''): Replica {
    return new Replica(NumberSet.empty(), NumberSet.empty(), epoch);
  }

  /** Applies one number change; true when it changed the state. */
  apply(c: { op: ChangeOp; number: string }): boolean {
    switch (c.op) {
      case 'sub+': return this.subs.add(c.number);
      case 'sub-': return this.subs.delete(c.number);
      case 'block': return this.blocked.add(c.number);
      case 'unblock': return this.blocked.delete(c.number);
    }
  }

  /** Merges pending changes into the sorted arrays (bounded work; see NumberSet). */
  compact(): void {
    this.subs.compact();
    this.blocked.compact();
  }

  bytes(): number {
    return this.subs.bytes() + this.blocked.bytes();
  }
}
