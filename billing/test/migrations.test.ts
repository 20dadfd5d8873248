import { afterEach, describe, expect, it } from 'vitest';
import { createPool, loadPgMigrations, migratePostgres } from '../../core/postgres/index.ts';
import { BILLING_MIGRATIONS_DIR, migrateBilling } from '../adapters/postgres/migrate.ts';
import { freshPostgres, type FreshPostgres } from '../../test/pg.ts';
import { insertBill, insertSubscriber, NY_PERIODS } from './pg-fixtures.ts';
import { tempDir } from '../../test/helpers.ts';
import fs from 'node:fs';
import path from 'node:path';

let db: FreshPostgres | undefined;
afterEach(async () => { await db?.close(); db = undefined; });

const versions = () => loadPgMigrations(BILLING_MIGRATIONS_DIR).map((m) => m.version);

describe('PostgreSQL migrations', () => {
  it('applies every billing migration once and nothing on a second run', async () => {
    db = await freshPostgres({ migrate: false });
    expect(await migrateBilling(db.pool)).toEqual(versions());
    expect(await migrateBilling(db.pool)).toEqual([]);
    const { rows } = await db.pool.query('SELECT version, name FROM schema_migrations ORDER BY version');
    expect(rows).toEqual(loadPgMigrations(BILLING_MIGRATIONS_DIR).map((m) => ({ version: m.version, name: m.name })));
    expect(rows[0]).toEqual({ version: 1, name: '0001_billing' });
  });

  it('two processes starting at once: one applies, the other waits and applies nothing', async () => {
    db = await freshPostgres({ migrate: false });
    const other = createPool(db.url, { max: 2 });
    try {
      const [a, b] = await Promise.all([migrateBilling(db.pool), migrateBilling(other)]);
      expect([a, b].sort((x, y) => y.length - x.length)).toEqual([versions(), []]);
      const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM schema_migrations');
      expect(rows[0].n).toBe(versions().length);
    } finally {
      await other.end();
    }
  });

  it('a failing migration leaves neither its changes nor its ledger row, and names the file', async () => {
    db = await freshPostgres({ migrate: false });
    const dir = tempDir('pgmig-');
    fs.writeFileSync(path.join(dir, '0001_ok.sql'), 'CREATE TABLE a (x int);');
    fs.writeFileSync(path.join(dir, '0002_bad.sql'), 'CREATE TABLE b (x int); SELECT no_such_column FROM a;');
    await expect(migratePostgres(db.pool, loadPgMigrations(dir))).rejects.toThrow(/0002_bad failed: column "no_such_column" does not exist/);
    const { rows } = await db.pool.query(`SELECT version FROM schema_migrations`);
    expect(rows).toEqual([{ version: 1 }]);
    const b = await db.pool.query(`SELECT to_regclass('b') AS t`);
    expect(b.rows[0].t).toBeNull();
  });

  it('refuses two migration files with the same version', () => {
    const dir = tempDir('pgmig-');
    fs.writeFileSync(path.join(dir, '0001_a.sql'), 'SELECT 1;');
    fs.writeFileSync(path.join(dir, '0001_b.sql'), 'SELECT 1;');
    expect(() => loadPgMigrations(dir)).toThrow('two PostgreSQL migrations share version 1');
  });
});

describe('billing schema', () => {
  it('derives the anniversary day and reads bigint as number, date as YYYY-MM-DD', async () => {
    db = await freshPostgres();
    const id = await insertSubscriber(db.pool, { phoneNumber: '+12025550100', subscriptionDate: '2024-01-31' });
    const { rows } = await db.pool.query('SELECT anniversary_day, subscription_date, plan, status, 9007199254740991::bigint AS big FROM subscribers WHERE id = $1', [id]);
    expect(rows[0]).toEqual({ anniversary_day: 31, subscription_date: '2024-01-31', plan: 'standard', status: 'active', big: 9007199254740991 });
    await expect(db.pool.query('SELECT 9007199254740993::bigint AS big')).rejects.toThrow('exceeds Number.MAX_SAFE_INTEGER');
  });

  it('refuses a non-NANP phone number and a duplicate one', async () => {
    db = await freshPostgres();
    await expect(insertSubscriber(db.pool, { phoneNumber: '+442079460000' })).rejects.toMatchObject({ code: '23514' });
    await insertSubscriber(db.pool, { phoneNumber: '+12025550100' });
    await expect(insertSubscriber(db.pool, { phoneNumber: '+12025550100' })).rejects.toMatchObject({ code: '23505', constraint: 'subscribers_phone_number_key' });
  });

  it('bills a period once: a second bill for the same (subscriber, period start) is refused', async () => {
    db = await freshPostgres();
    const sub = await insertSubscriber(db.pool, { phoneNumber: '+12025550100' });
    await insertBill(db.pool, { subscriberId: sub, ...NY_PERIODS[0] });
    await expect(insertBill(db.pool, { subscriberId: sub, ...NY_PERIODS[0] })).rejects.toMatchObject({ code: '23505', constraint: 'bills_subscriber_period' });
    await expect(insertBill(db.pool, { subscriberId: 'f0000000-0000-4000-8000-000000000000', ...NY_PERIODS[1] })).rejects.toMatchObject({ code: '23503', constraint: 'bills_subscriber_id_fkey' });
    await insertBill(db.pool, { subscriberId: sub, ...NY_PERIODS[1] });
  });

  it('keeps issued bills immutable: only status and paid_cents change; lines, amounts and periods never; no delete of bills', async () => {
    db = await freshPostgres();
    const sub = await insertSubscriber(db.pool, { phoneNumber: '+12025550100' });
    const bill = await insertBill(db.pool, { subscriberId: sub, ...NY_PERIODS[0] });
    const refused = { code: '23001' };
    await expect(db.pool.query('UPDATE bills SET total_cents = 1 WHERE id = $1', [bill])).rejects.toMatchObject({ ...refused, message: `bill ${bill} is issued and immutable: only status and paid_cents may change` });
    await expect(db.pool.query(`UPDATE bills SET period_end = period_end + interval '1 day' WHERE id = $1`, [bill])).rejects.toMatchObject(refused);
    await expect(db.pool.query(`UPDATE bills SET lines = '[]'::jsonb WHERE id = $1`, [bill])).rejects.toMatchObject({ ...refused, message: `bill ${bill} is issued and immutable: only status and paid_cents may change` });
    await expect(db.pool.query(`UPDATE bills SET lines = jsonb_set(lines, '{0,amountCents}', '0') WHERE id = $1`, [bill])).rejects.toMatchObject(refused);
    await expect(db.pool.query('DELETE FROM bills WHERE id = $1', [bill])).rejects.toMatchObject({ ...refused, message: 'DELETE on bills refused: issued bills are immutable' });
    await expect(db.pool.query('TRUNCATE bills CASCADE')).rejects.toMatchObject(refused);

    const r = await db.pool.query(`UPDATE bills SET status = 'paid', paid_cents = 2000 WHERE id = $1 RETURNING status, paid_cents, total_cents`, [bill]);
    expect(r.rows).toEqual([{ status: 'paid', paid_cents: 2000, total_cents: 2000 }]);
    const lines = await db.pool.query(`SELECT lines FROM bills WHERE id = $1`, [bill]);
    expect(lines.rows).toEqual([{ lines: [{ kind: 'monthly_service', description: 'Monthly service', calls: 0, billableSeconds: 0, amountCents: 2000 }] }]);
  });
});
