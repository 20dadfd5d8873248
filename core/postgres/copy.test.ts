/** COPY in against a real PostgreSQL: every value arrives as it was given, parts in strings or bytes. */
import { afterEach, describe, expect, it } from 'vitest';
import { freshPostgres, type FreshPostgres } from '../../test/pg.ts';
import { copyBytes, copyInParts, copyText } from './index.ts';

let db: FreshPostgres | undefined;
afterEach(async () => { await db?.close(); db = undefined; });

describe('COPY in parts', () => {
  it('stores string and byte parts as one value each, escaped where they hold a backslash, tab or newline', async () => {
    db = await freshPostgres({ migrate: false });
    const values = ['plain', 'tab\there', 'new\nline', 'back\\slash', '{"d":"\\u00e9"}', 'ünïcødé ☎', ''];
    const client = await db.pool.connect();
    try {
      await client.query('CREATE TABLE t (n integer, v text)');
      // Each value split in two: a string half and a byte half, and 20,000 rows so that lines cross chunk boundaries.
      const rows = Array.from({ length: 20_000 }, (_, i) => [i, values[i % values.length]!] as const);
      await copyInParts(client, 'COPY t FROM STDIN', rows, ([n, v]) => {
        const cut = Math.floor(v.length / 2);
        return [`${n}\t`, copyText(v.slice(0, cut)), copyBytes(Buffer.from(v.slice(cut), 'utf8')), '\n'];
      });
      const { rows: back } = await client.query<{ n: number; v: string }>('SELECT n, v FROM t ORDER BY n');
      expect(back).toEqual(rows.map(([n, v]) => ({ n, v })));
    } finally { client.release(); }
  });

  it('copyBytes returns bytes needing no escape as they are', () => {
    const b = Buffer.from('{"kind":"domestic"}');
    expect(copyBytes(b)).toBe(b);
    expect(copyBytes(Buffer.from('a\\b')).toString()).toBe('a\\\\b');
  });
});
