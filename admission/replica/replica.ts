/**
 * One snapshot of the admission state (subscriber numbers, blocked numbers)
 * as loaded from Redis under one epoch, then kept current by the change
 * messages of core/redis/layout.ts.
 */
import type { ChangeOp } from '../../core/redis/layout.ts';
import type { CallerLookup } from '../domain/decide.ts';
import { BLOCKED, NumberTable, numberKey, SUBSCRIBER } from './number-table.ts';

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
  /** The hot path's lookup, bound so `decide` can take it as a plain function. */
  readonly lookup: CallerLookup;

  constructor(readonly table: NumberTable, readonly epoch: string) {
    this.lookup = (e164) => table.state(e164);
  }

  static empty(epoch = ''): Replica {
    return new Replica(new NumberTable(), epoch);
  }

  get subscribers(): number { return this.table.subscribers; }
  get blocked(): number { return this.table.blocked; }

  /** Applies one number change in place; true when it changed the state. */
  apply(c: { op: ChangeOp; number: string }): boolean {
    switch (c.op) {
      case 'sub+': return this.table.set(c.number, SUBSCRIBER, true);
      case 'sub-': return this.table.set(c.number, SUBSCRIBER, false);
      case 'block': return this.table.set(c.number, BLOCKED, true);
      case 'unblock': return this.table.set(c.number, BLOCKED, false);
    }
  }

  bytes(): number {
    return this.table.bytes();
  }
}
