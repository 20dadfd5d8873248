import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CallerState } from '../domain/decide.ts';
import { keyToNumber, NumberSet, NumberSetBuilder, numberKey } from '../replica/number-set.ts';
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

describe('NumberSet', () => {
  it('builds sorted, deduplicated partitions from numbers in any order', () => {
    const b = new NumberSetBuilder();
    for (const n of ['+14165550123', '+12125550102', '+12125550101', '+12125550102', 'bad', '+1212']) b.add(n);
    expect(b.malformed).toBe(2);
    const s = b.build();
    expect(s.size).toBe(3);
    expect([...s]).toEqual(['+12125550101', '+12125550102', '+14165550123']);
    expect(s.has('+12125550101')).toBe(true);
    expect(s.has('+12125550103')).toBe(false);
    expect(s.has('bad')).toBe(false);
    expect(s.bytes()).toBe(12); // 4 bytes per number, nothing else
  });

  it('grows a partition past its initial buffer (64) and keeps every number', () => {
    const numbers = Array.from({ length: 1000 }, (_, i) => keyToNumber(2125550000 + i * 7));
    const s = NumberSet.of([...numbers].reverse());
    expect(s.size).toBe(1000);
    expect([...s]).toEqual(numbers);
    expect(numbers.every((n) => s.has(n))).toBe(true);
    expect(s.has(keyToNumber(2125550001))).toBe(false);
  });

  it('add and delete report changes, override the arrays until compact, and compact merges them', () => {
    const s = NumberSet.of(['+12125550101', '+12125550102']);
    expect(s.add('+12125550101')).toBe(false);
    expect(s.add('+12125550100')).toBe(true);
    expect(s.delete('+12125550102')).toBe(true);
    expect(s.delete('+12125550102')).toBe(false);
    expect(s.add('+16045550100')).toBe(true);
    expect(s.add('nope')).toBe(false);
    expect(s.pending).toBe(3);
    expect(s.size).toBe(3);
    expect([...s]).toEqual(['+12125550100', '+12125550101', '+16045550100']);
    s.compact();
    expect(s.pending).toBe(0);
    expect(s.bytes()).toBe(12);
    expect([...s]).toEqual(['+12125550100', '+12125550101', '+16045550100']);
    expect(s.has('+12125550102')).toBe(false);
  });

  it('a number added then removed before a merge leaves nothing behind', () => {
    const s = NumberSet.of(['+12125550101']);
    s.add('+12125550109');
    s.delete('+12125550109');
    s.delete('+12125550101');
    s.add('+12125550101');
    s.compact();
    expect([...s]).toEqual(['+12125550101']);
    expect(s.size).toBe(1);
  });

  it('property: any sequence of adds and deletes matches a Set, with merges at any point', () => {
    const number = fc.integer({ min: 0, max: 60 }).map((i) => keyToNumber([2125550000, 2125559990, 4165550000, 9995550000][i % 4]! + i));
    const op = fc.tuple(fc.constantFrom('add', 'delete', 'compact'), number);
    fc.assert(fc.property(fc.array(number, { maxLength: 30 }), fc.array(op, { maxLength: 200 }), fc.integer({ min: 1, max: 16 }), (initial, ops, limit) => {
      const b = new NumberSetBuilder();
      initial.forEach((n) => b.add(n));
      const s = b.build(limit);
      const model = new Set(initial);
      for (const [kind, n] of ops) {
        if (kind === 'compact') { s.compact(); continue; }
        const changed = kind === 'add' ? !model.has(n) : model.has(n);
        if (kind === 'add') model.add(n); else model.delete(n);
        expect(kind === 'add' ? s.add(n) : s.delete(n)).toBe(changed);
        expect(s.pending).toBeLessThan(limit);
      }
      expect(s.size).toBe(model.size);
      expect([...s]).toEqual([...model].sort());
      for (let i = 0; i <= 60; i++) {
        const n = keyToNumber([2125550000, 2125559990, 4165550000, 9995550000][i % 4]! + i);
        expect(s.has(n)).toBe(model.has(n));
      }
    }), { numRuns: 300 });
  });
});

describe('Replica', () => {
  it('looks up a caller: unknown unless a subscriber, blocked only when also a subscriber', () => {
    const r = new Replica(NumberSet.of(['+12125550101', '+12125550102']), NumberSet.of(['+12125550102', '+12125550199']), 'e1');
    expect(r.lookup('+12125550101')).toBe(CallerState.Active);
    expect(r.lookup('+12125550102')).toBe(CallerState.Blocked);
    expect(r.lookup('+12125550199')).toBe(CallerState.Unknown);
    expect(r.lookup('+12125550100')).toBe(CallerState.Unknown);
    for (const bad of ['+1212555010', '+121255501011', '+22125550101', '+1212555010x', '']) expect(r.lookup(bad)).toBe(CallerState.Unknown);
  });

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
