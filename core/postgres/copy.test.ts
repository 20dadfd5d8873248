/** COPY in and out against a real PostgreSQL: every value comes back as it went in. */
import { afterEach, describe, expect, it } from 'vitest';
import { freshPostgres, type FreshPostgres } from '../../test/pg.ts';
import { copyIn, copyOutRows, copyText, COPY_NULL } from './index.ts';

let db: FreshPostgres | undefined;
afterEach(async () => { await db?.close(); db = undefined; });

describe('COPY', () => {
  it('copyOutRows returns each field unescaped, NULL as COPY_NULL, in the query order', async () => {
    db = await freshPostgres({ migrate: false });
    const values = ['plain', 'tab\there', 'new\nline', 'back\\slash', 'cr\rand\\t literal', '', 'ünïcødé'];
    const client = await db.pool.connect();
    try {
      await client.query('CREATE TABLE t (n integer, v text)');
      await copyIn(client, 'COPY t FROM STDIN', [...values.map((v, i) => [i, v] as const), [values.length, null] as const],
        ([n, v]) => `${n}\t${v === null ? COPY_NULL : copyText(v)}\n`);
      const rows = await copyOutRows(client, 'COPY (SELECT n, v FROM t ORDER BY n DESC) TO STDOUT');
      expect(rows).toEqual([[String(values.length), COPY_NULL], ...values.map((v, i) => [String(i), v]).reverse()]);
      expect(await copyOutRows(client, 'COPY (SELECT 1 WHERE false) TO STDOUT')).toEqual([]);
    } finally { client.release(); }
  });
});
