import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CallerState } from '../domain/decide.ts';
import { BLOCKED, keyToNumber, NumberTable, NumberTableBuilder, numberKey, SUBSCRIBER } from '../replica/number-table.ts';
import { parseChange, Replica } from '../replica/replica.ts';

describe('numberKey', () => {
  it.each([
    ['+12125550101', 2125550101],
    ['+10000000000', 0],
    ['+19999999999', 9999999999],
    ['+1212555010', -1],
    ['+121255501011', -1],
    ['12125550101', -1],
    ['+22125550101', -1],
    ['+1212555010a', -1],
    ['', -1],
  ])('%s → %d', (s, k) => {
    expect(numberKey(s)).toBe(k);
    if (k >= 0) expect(keyToNumber(k)).toBe(s);
  });
});

function build(subs: string[], blocked: string[] = []): NumberTable {
  const b = new NumberTableBuilder();
  for (const n of subs) b.add(n, SUBSCRIBER);
  for (const n of blocked) b.add(n, BLOCKED);
  return b.build();
}

describe('NumberTable', () => {
  it('builds from numbers in any order, repeats and both flags allowed', () => {
    const b = new NumberTableBuilder();
    for (const n of ['+14165550123', '+12125550102', '+12125550101', '+12125550102', 'bad', '+1212']) b.add(n, SUBSCRIBER);
    b.add('+12125550102', BLOCKED);
    b.add('+16045550100', BLOCKED);
    expect(b.malformed).toBe(2);
    const t = b.build();
    expect(t.subscribers).toBe(3);
    expect(t.blocked).toBe(2);
    expect(t.numbers(SUBSCRIBER)).toEqual(['+12125550101', '+12125550102', '+14165550123']);
    expect(t.numbers(BLOCKED)).toEqual(['+12125550102', '+16045550100']);
    expect(t.flags('+12125550102')).toBe(SUBSCRIBER | BLOCKED);
    expect(t.flags('+16045550100')).toBe(BLOCKED);
    expect(t.flags('+12125550103')).toBe(0);
    expect(t.flags('bad')).toBe(0);
    // Three partitions (212, 416, 604) of the minimum 8 slots of 4 bytes.
    expect(t.bytes()).toBe(3 * 8 * 4);
  });

  it('state(): unknown unless a subscriber, blocked only when also a subscriber, malformed is unknown', () => {
    const t = build(['+12125550101', '+12125550102'], ['+12125550102', '+12125550199']);
    expect(t.state('+12125550101')).toBe(CallerState.Active);
    expect(t.state('+12125550102')).toBe(CallerState.Blocked);
    expect(t.state('+12125550199')).toBe(CallerState.Unknown);
    expect(t.state('+12125550100')).toBe(CallerState.Unknown);
    for (const bad of ['+1212555010', '+121255501011', '+22125550101', '+1212555010x', '']) expect(t.state(bad)).toBe(CallerState.Unknown);
  });

  it('grows a partition past three quarters full and keeps every number', () => {
    const numbers = Array.from({ length: 1000 }, (_, i) => keyToNumber(2125550000 + i * 7));
    const t = build([...numbers].reverse());
    expect(t.subscribers).toBe(1000);
    expect(t.numbers(SUBSCRIBER)).toEqual(numbers);
    expect(t.bytes()).toBe(2048 * 4); // 1000 / 2048 ≤ 0.75
    const grown = new NumberTable();
    numbers.forEach((n) => grown.set(n, SUBSCRIBER, true));
    expect(grown.numbers(SUBSCRIBER)).toEqual(numbers);
    expect(grown.bytes()).toBe(2048 * 4);
    expect(grown.state(keyToNumber(2125550001))).toBe(CallerState.Unknown);
  });

  it('set() reports changes and removes a number once it has no flag left', () => {
    const t = build(['+12125550101', '+12125550102']);
    expect(t.set('+12125550101', SUBSCRIBER, true)).toBe(false);
    expect(t.set('+12125550100', SUBSCRIBER, true)).toBe(true);
    expect(t.set('+12125550102', SUBSCRIBER, false)).toBe(true);
    expect(t.set('+12125550102', SUBSCRIBER, false)).toBe(false);
    expect(t.set('+12125550102', BLOCKED, false)).toBe(false);
    expect(t.set('+16045550100', BLOCKED, true)).toBe(true);
    expect(t.set('nope', SUBSCRIBER, true)).toBe(false);
    expect(t).toMatchObject({ subscribers: 2, blocked: 1 });
    expect(t.numbers(SUBSCRIBER)).toEqual(['+12125550100', '+12125550101']);
    expect(t.flags('+12125550102')).toBe(0);
  });

  it('property: any sequence of flag changes matches a Map, through growth and backward-shift deletes', () => {
    // Few partitions and many colliding lines: long probe runs that wrap around the table.
    const number = fc.integer({ min: 0, max: 80 }).map((i) => keyToNumber([2125550000, 2125559990, 4165550000, 9990000000][i % 4]! + i * 131));
    const op = fc.tuple(number, fc.constantFrom(SUBSCRIBER, BLOCKED), fc.boolean());
    fc.assert(fc.property(fc.array(op, { maxLength: 40 }), fc.array(op, { maxLength: 300 }), (initial, ops) => {
      const b = new NumberTableBuilder();
      const model = new Map<string, number>();
      for (const [n, flag, on] of initial) if (on) { b.add(n, flag); model.set(n, (model.get(n) ?? 0) | flag); }
      const t = b.build();
      for (const [n, flag, on] of ops) {
        const before = model.get(n) ?? 0;
        const after = on ? before | flag : before & ~flag;
        if (after === 0) model.delete(n); else model.set(n, after);
        expect(t.set(n, flag, on)).toBe(before !== after);
      }
      for (const [n, f] of model) expect(t.flags(n)).toBe(f);
      const withFlag = (f: number) => [...model].filter(([, v]) => v & f).map(([n]) => n).sort();
      expect(t.numbers(SUBSCRIBER)).toEqual(withFlag(SUBSCRIBER));
      expect(t.numbers(BLOCKED)).toEqual(withFlag(BLOCKED));
      expect(t.subscribers).toBe(withFlag(SUBSCRIBER).length);
      expect(t.blocked).toBe(withFlag(BLOCKED).length);
    }), { numRuns: 300 });
  });
});

describe('Replica', () => {
  it('applies the four change ops', () => {
    const r = Replica.empty('e1');
    expect(r.apply({ op: 'sub+', number: '+12125550101' })).toBe(true);
    expect(r.apply({ op: 'block', number: '+12125550101' })).toBe(true);
    expect(r.lookup('+12125550101')).toBe(CallerState.Blocked);
    expect(r.apply({ op: 'unblock', number: '+12125550101' })).toBe(true);
    expect(r.lookup('+12125550101')).toBe(CallerState.Active);
    expect(r.apply({ op: 'sub-', number: '+12125550101' })).toBe(true);
    expect(r.apply({ op: 'sub-', number: '+12125550101' })).toBe(false);
    expect(r.lookup('+12125550101')).toBe(CallerState.Unknown);
    expect(r).toMatchObject({ subscribers: 0, blocked: 0 });
  });
});

describe('parseChange', () => {
  it.each([
    ['sub+ +12125550101', { op: 'sub+', number: '+12125550101' }],
    ['sub- +12125550101', { op: 'sub-', number: '+12125550101' }],
    ['block +12125550101', { op: 'block', number: '+12125550101' }],
    ['unblock +12125550101', { op: 'unblock', number: '+12125550101' }],
    ['resync 2026-11-29T10:00:00Z#7', { op: 'resync', epoch: '2026-11-29T10:00:00Z#7' }],
    ['block 2125550101', undefined],
    ['ban +12125550101', undefined],
    ['block', undefined],
    ['resync ', undefined],
    ['', undefined],
  ])('%j', (message, expected) => {
    expect(parseChange(message)).toEqual(expected);
  });
});
