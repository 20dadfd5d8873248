/** COPY in against a real PostgreSQL: every value arrives as it was given, from lines or from bytes already in COPY text. */
import { afterEach, describe, expect, it } from 'vitest';
import { freshPostgres, type FreshPostgres } from '../../test/pg.ts';
import { copyBuffer, copyIn, copyText } from './index.ts';

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

  it('copyBuffer stores rows of COPY text as they are, across its 64 KiB pieces, and returns the count the server stored', async () => {
    db = await freshPostgres({ migrate: false });
    const values = ['plain', 'tab\there', 'back\\slash', '{"d":"\\u00e9"}', 'ünïcødé ☎', ''];
    const client = await db.pool.connect();
    try {
      await client.query('CREATE TABLE t (n integer, v text)');
      const rows = Array.from({ length: 30_000 }, (_, i) => [i, values[i % values.length]!] as const);
      const text = Buffer.from(rows.map(([n, v]) => `${n}\t${copyText(v)}\n`).join(''), 'utf8');
      expect(text.length).toBeGreaterThan(4 * 65_536);
      expect(await copyBuffer(client, 'COPY t FROM STDIN', text)).toBe(rows.length);
      const { rows: back } = await client.query<{ n: number; v: string }>('SELECT n, v FROM t ORDER BY n');
      expect(back).toEqual(rows.map(([n, v]) => ({ n, v })));
      await expect(copyBuffer(client, 'COPY t FROM STDIN', Buffer.from('1\tno newline at the end, then a second row\nx\ty\n'))).rejects.toThrow(/integer/);
    } finally { client.release(); }
  });
});
