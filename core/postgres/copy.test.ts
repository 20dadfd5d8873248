/** COPY in against a real PostgreSQL: every value arrives as it was given, from lines of COPY text or from tuples of the binary format. */
import { afterEach, describe, expect, it } from 'vitest';
import { freshPostgres, type FreshPostgres } from '../../test/pg.ts';
import { bytesOf, copyBinary, copyIn, copyText } from './index.ts';

let db: FreshPostgres | undefined;
afterEach(async () => { await db?.close(); db = undefined; });

describe('COPY in', () => {
  it('copyIn stores each line\'s values as they were given, escaped where they hold a backslash, tab or newline', async () => {
    db = await freshPostgres({ migrate: false });
    const values = ['plain', 'tab\there', 'new\nline', 'back\\slash', '{"d":"\\u00e9"}', 'ünïcødé ☎', ''];
    const client = await db.pool.connect();
    try {
      await client.query('CREATE TABLE t (n integer, v text)');
      // 20,000 rows, so that lines cross the 64 KiB chunks (multi-byte characters among them).
      const rows = Array.from({ length: 20_000 }, (_, i) => [i, values[i % values.length]!] as const);
      await copyIn(client, 'COPY t FROM STDIN', rows, ([n, v]) => `${n}\t${copyText(v)}\n`);
      const { rows: back } = await client.query<{ n: number; v: string }>('SELECT n, v FROM t ORDER BY n');
      expect(back).toEqual(rows.map(([n, v]) => ({ n, v })));
    } finally { client.release(); }
  });

  it('copyBinary stores tuples of the binary COPY format as they are, across its 64 KiB pieces, and returns the count the server stored', async () => {
    db = await freshPostgres({ migrate: false });
    const values = ['plain', 'tab\there', 'new\nline', 'back\\slash', '{"d":"\\u00e9"}', 'ünïcødé ☎', ''];
    const client = await db.pool.connect();
    try {
      await client.query('CREATE TABLE t (n integer, v text, at timestamptz, big bigint)');
      const rows = Array.from({ length: 30_000 }, (_, i) => ({ n: i, v: values[i % values.length]!, at: new Date(Date.UTC(2026, 10, 30) + i * 1000), big: BigInt(i) * 4_000_000_000n }));
      // Field count, then each field's length and its big-endian bytes; timestamptz counts microseconds from 2000-01-01.
      const tuple = (r: (typeof rows)[number]) => {
        const v = Buffer.from(r.v, 'utf8');
        const b = Buffer.alloc(2 + 8 + 4 + v.length + 12 + 12);
        let at = b.writeInt16BE(4, 0);
        at = b.writeInt32BE(4, at); at = b.writeInt32BE(r.n, at);
        at = b.writeInt32BE(v.length, at); at += v.copy(b, at);
        at = b.writeInt32BE(8, at); at = b.writeBigInt64BE(BigInt(r.at.getTime() - Date.UTC(2000, 0, 1)) * 1000n, at);
        at = b.writeInt32BE(8, at); b.writeBigInt64BE(r.big, at);
        return b;
      };
      const tuples = Buffer.concat(rows.map(tuple));
      expect(tuples.length).toBeGreaterThan(4 * 65_536);
      expect(await copyBinary(client, 'COPY t FROM STDIN (FORMAT binary)', tuples)).toBe(rows.length);
      const { rows: back } = await client.query('SELECT n, v, at, big::text FROM t ORDER BY n');
      expect(back).toEqual(rows.map((r) => ({ ...r, big: String(r.big) })));
      // A tuple cut short is refused, and nothing of its COPY is stored.
      await expect(copyBinary(client, 'COPY t FROM STDIN (FORMAT binary)', tuples.subarray(0, tuples.length - 3))).rejects.toThrow(/unexpected EOF|row field count/);
      expect((await client.query('SELECT count(*)::int AS c FROM t')).rows).toEqual([{ c: rows.length }]);
    } finally { client.release(); }
  });

  it('copyBinary stores tuples picked out of a larger buffer by spans, in the spans\' order: short ones packed, adjacent runs joined, long runs sent as they are', async () => {
    db = await freshPostgres({ migrate: false });
    const client = await db.pool.connect();
    try {
      // seq numbers the rows in the order the COPY sent them.
      await client.query('CREATE TABLE t (n integer, v text, seq bigserial)');
      // Tuples of 1 to ~100 KiB (so single spans and runs of adjacent ones cross and exceed the 64 KiB pieces).
      const sizes = Array.from({ length: 3_000 }, (_, i) => (i % 997 === 0 ? 100_000 : 1 + ((i * 7919) % 3_000)));
      const tuples = sizes.map((len, n) => {
        const b = Buffer.alloc(2 + 8 + 4 + len);
        let at = b.writeInt16BE(2, 0);
        at = b.writeInt32BE(4, at); at = b.writeInt32BE(n, at);
        at = b.writeInt32BE(len, at); b.fill(97 + (n % 26), at);
        return b;
      });
      const data = Buffer.concat(tuples);
      const starts: number[] = [];
      for (let n = 0, at = 0; n < tuples.length; at += tuples[n]!.length, n++) starts.push(at);
      // Every third tuple left out, and the rest in an order that keeps some runs adjacent and breaks others.
      const picked = [...tuples.keys()].filter((n) => n % 3 !== 0).sort((a, b) => (Math.floor(a / 50) % 2) - (Math.floor(b / 50) % 2) || a - b);
      const spans = picked.flatMap((n) => [starts[n]!, starts[n]! + tuples[n]!.length]);
      expect(bytesOf({ data, spans })).toEqual(Buffer.concat(picked.map((n) => tuples[n]!)));
      expect(await copyBinary(client, 'COPY t (n, v) FROM STDIN (FORMAT binary)', { data, spans })).toBe(picked.length);
      const { rows: back } = await client.query<{ n: number; len: number; ok: boolean }>(
        'SELECT n, length(v) AS len, v = repeat(chr(97 + n % 26), length(v)) AS ok FROM t ORDER BY seq');
      expect(back.map((r) => r.n)).toEqual(picked);
      expect(back.every((r) => r.ok && r.len === sizes[r.n])).toBe(true);
    } finally { client.release(); }
  });
});
