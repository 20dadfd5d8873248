/** core/clickhouse/readonly.ts against the real engine: what counts as one read-only statement. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouse } from '../../core/clickhouse/client.ts';
import { queryRows } from '../../core/clickhouse/client.ts';
import { assertReadOnlyQuery, readOnlySettings, readOnlyStatement } from '../../core/clickhouse/readonly.ts';
import { freshClickHouse } from '../../test/helpers.ts';

let ch: ClickHouse;
beforeAll(async () => { ch = await freshClickHouse('ro'); });
afterAll(async () => { await ch.close(); });

const reason = (sql: string) => assertReadOnlyQuery(ch, sql).then(() => 'ok', (e: Error & { kind?: string; field?: string }) => `${e.kind}/${e.field}: ${e.message}`);

describe('assertReadOnlyQuery', () => {
  it.each([
    'SELECT 1',
    'select count() from system.one;',
    '  WITH x AS (SELECT 1 AS a) SELECT a FROM x  ',
    'SELECT 1 UNION ALL SELECT 2',
    '(SELECT 1) EXCEPT (SELECT 2)',
    'SHOW TABLES FROM system',
    'SHOW CREATE TABLE system.one',
    'DESCRIBE TABLE system.one',
    'EXISTS TABLE system.one',
    'EXPLAIN SELECT 1',
    "SELECT 'DROP TABLE x; --' AS s -- a comment; DROP TABLE y",
  ])('accepts %s', async (sql) => {
    expect(await reason(sql)).toBe('ok');
  });

  it.each([
    ['DROP TABLE t', 'invalid/sql: sql: only SELECT, WITH … SELECT, SHOW, DESCRIBE, EXISTS and EXPLAIN are allowed, got DropQuery'],
    ["INSERT INTO t VALUES (1)", 'invalid/sql: sql: only SELECT, WITH … SELECT, SHOW, DESCRIBE, EXISTS and EXPLAIN are allowed, got InsertQuery'],
    ['CREATE TABLE z (a Int8) ENGINE = Memory', 'invalid/sql: sql: only SELECT, WITH … SELECT, SHOW, DESCRIBE, EXISTS and EXPLAIN are allowed, got CreateQuery'],
    ['SET readonly = 0', 'invalid/sql: sql: only SELECT, WITH … SELECT, SHOW, DESCRIBE, EXISTS and EXPLAIN are allowed, got Set'],
    ['ALTER TABLE t DELETE WHERE 1', 'invalid/sql: sql: only SELECT, WITH … SELECT, SHOW, DESCRIBE, EXISTS and EXPLAIN are allowed, got AlterQuery'],
    ["SELECT 1 INTO OUTFILE '/tmp/phonebill-x'", 'invalid/sql: sql: INTO OUTFILE is not allowed: the statement must only read'],
    ['SELECT 1 FORMAT CSV', 'invalid/sql: sql: a FORMAT clause is not allowed: results come back in a fixed format'],
    ['', 'invalid/sql: sql: is empty'],
  ])('refuses %s', async (sql, expected) => {
    expect(await reason(sql)).toBe(expected);
  });

  it('refuses several statements without running any of them', async () => {
    await ch.client.command({ query: `CREATE TABLE ${ch.table('keep')} (a Int8) ENGINE = MergeTree ORDER BY a` });
    const r = await reason(`SELECT 1; DROP TABLE ${ch.table('keep')}`);
    expect(r).toMatch(/^invalid\/sql: sql: Syntax error \(Multi-statements are not allowed\)/);
    expect(await reason(`SELECT 1 -- '\n; DROP TABLE ${ch.table('keep')}`)).toMatch(/Multi-statements are not allowed/);
    expect(await queryRows(ch, `EXISTS TABLE ${ch.table('keep')}`)).toEqual([{ result: 1 }]);
  });

  it('refuses a syntax error with the engine\'s reason', async () => {
    expect(await reason('SELEKT 1')).toMatch(/^invalid\/sql: sql: Syntax error/);
  });

  it('returns the canonical single statement to run, and settings by engine', async () => {
    expect(await readOnlyStatement(ch, 'select  1 ;')).toBe('SELECT 1');
    expect(readOnlySettings(ch)).toEqual(ch.embedded ? undefined : { readonly: '1' });
  });
});
