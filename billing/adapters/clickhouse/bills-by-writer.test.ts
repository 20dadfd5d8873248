/**
 * billsByWriter: the rating query renders each bill as a binary COPY tuple in no particular order;
 * each must reach the writer transaction its subscriber was staged for, exactly once.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { billsByWriter, RENDERED_BILL_COLUMNS, type UsageItem } from './usage.ts';
import { bytesOf } from '../../../core/postgres/index.ts';

/** A tuple as the query renders it: the item's number in the subscriber field, a body of `size` bytes as its lines. */
function tuple(itemNo: number, lines = '[]'): Buffer {
  const parts: Buffer[] = [];
  const field = (b: Buffer) => { const l = Buffer.alloc(4); l.writeInt32BE(b.length); parts.push(l, b); };
  const n = Buffer.alloc(2); n.writeInt16BE(RENDERED_BILL_COLUMNS.length); parts.push(n);
  field(Buffer.alloc(16, 1)); // id
  const sub = Buffer.alloc(16); sub.writeUInt32BE(itemNo); field(sub);
  field(Buffer.alloc(4)); field(Buffer.alloc(8)); field(Buffer.alloc(8)); field(Buffer.alloc(4)); field(Buffer.alloc(4)); // index, instants, dates
  field(Buffer.from('USD')); field(Buffer.alloc(8)); field(Buffer.from(lines));
  field(Buffer.alloc(8)); field(Buffer.alloc(8)); field(Buffer.alloc(8)); field(Buffer.alloc(16, 2)); // issued, due, watermark, run
  field(Buffer.alloc(8)); // next period's end
  return Buffer.concat(parts);
}

const items = (first: number, n: number): UsageItem[] => Array.from({ length: n }, (_, k) => ({
  itemNo: first + k, sourceNumber: `+1212555${String(first + k).padStart(4, '0')}`, periodNo: 0, writer: k % 3 === 0 ? 1 : 0, subscriberId: randomUUID(),
}));
const halves = (xs: UsageItem[]) => [xs.filter((x) => x.writer === 0), xs.filter((x) => x.writer === 1)];
/** Item number and subscriber of each tuple of a block, in order. */
function read(block: Buffer): { itemLines: string; subscriberId: string }[] {
  const out = [];
  for (let at = 0; at < block.length;) {
    let p = at + 2;
    const fields: Buffer[] = [];
    for (let f = 0; f < RENDERED_BILL_COLUMNS.length; f++) { const len = block.readInt32BE(p); fields.push(block.subarray(p + 4, p + 4 + len)); p += 4 + len; }
    const h = fields[1]!.toString('hex');
    out.push({ itemLines: fields[9]!.toString(), subscriberId: `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}` });
    at = p;
  }
  return out;
}

describe('billsByWriter', () => {
  it('puts every bill, in whatever order it came, in its writer\'s block with its subscriber\'s id', () => {
    const xs = items(500, 30);
    const order = xs.map((x) => x.itemNo).sort(() => Math.random() - 0.5);
    const out = billsByWriter(Buffer.concat(order.map((no) => tuple(no, `["item ${no}"]`))), halves(xs));
    expect(out.map((o) => o.rows)).toEqual([20, 10]);
    for (const [w, block] of out.entries()) {
      expect(block.columns).toEqual(RENDERED_BILL_COLUMNS);
      const got = read(bytesOf(block.tuples));
      const want = xs.filter((x) => x.writer === w);
      expect(got.map((g) => g.itemLines).sort()).toEqual(want.map((x) => `["item ${x.itemNo}"]`).sort());
      for (const g of got) expect(g.subscriberId).toBe(xs.find((x) => `["item ${x.itemNo}"]` === g.itemLines)!.subscriberId);
    }
  });

  it('refuses a bill of an item not staged, a bill twice, a missing bill, and a cut tuple', () => {
    const xs = items(10, 4);
    const all = [10, 11, 12, 13].map((no) => tuple(no));
    expect(() => billsByWriter(Buffer.concat([...all, tuple(14)]), halves(xs))).toThrow('a bill row of item 14, which is not staged in this chunk or came twice');
    expect(() => billsByWriter(Buffer.concat([...all, tuple(12)]), halves(xs))).toThrow('a bill row of item 12, which is not staged in this chunk or came twice');
    expect(() => billsByWriter(Buffer.concat(all.slice(1)), halves(xs))).toThrow('3 bill rows for the 4 periods staged');
    const whole = Buffer.concat(all);
    expect(() => billsByWriter(whole.subarray(0, whole.length - 5), halves(xs))).toThrow('a bill row cut short');
    expect(() => billsByWriter(Buffer.alloc(0), halves(xs))).toThrow('0 bill rows for the 4 periods staged');
  });
});
