import { afterEach, describe, expect, it } from 'vitest';
import { copyIn, createPool, loadPgMigrations, migratePostgres } from '../../core/postgres/index.ts';
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
    await insertBill(db.pool, { subscriberId: sub, ...NY_PERIODS[1] });
  });

  it('refuses a bill whose subscriber does not exist, by INSERT and by COPY, storing none of the statement\'s bills', async () => {
    db = await freshPostgres();
    const sub = await insertSubscriber(db.pool, { phoneNumber: '+12025550100' });
    const unknown = 'f0000000-0000-4000-8000-000000000000';
    const refused = { code: '23503', constraint: 'bills_subscriber_exists', table: 'bills', column: 'subscriber_id',
      message: `insert on table "bills" refused: subscriber ${unknown} does not exist` };
    await expect(insertBill(db.pool, { subscriberId: unknown, ...NY_PERIODS[0] })).rejects.toMatchObject(refused);

    const p = NY_PERIODS[1];
    const row = (subscriberId: string) => `${subscriberId}\t${p.periodIndex}\t${p.periodStart}\t${p.periodEnd}\t${p.periodStartLocal}\t${p.periodEndLocal}\t`
      + `${p.nextPeriodEnd}\t${p.issuedAt}\t${p.dueAt}\tUSD\t2000\t${p.issuedAt}\t[{"kind":"monthly_service","amountCents":2000}]\n`;
    const copy = `COPY bills (subscriber_id, period_index, period_start, period_end, period_start_local, period_end_local,
      next_period_end, issued_at, due_at, currency, total_cents, watermark, lines) FROM STDIN`;
    const client = await db.pool.connect();
    try {
      await expect(copyIn(client, copy, [sub, unknown], row)).rejects.toMatchObject(refused);
      expect((await db.pool.query('SELECT count(*)::int AS n FROM bills')).rows).toEqual([{ n: 0 }]);
      // Checked per statement: a COPY naming known subscribers only goes in.
      await copyIn(client, copy, [sub], row);
    } finally {
      client.release();
    }
    expect((await db.pool.query('SELECT subscriber_id, period_index FROM bills')).rows).toEqual([{ subscriber_id: sub, period_index: 1 }]);
  });

  it('never deletes a subscriber nor changes its id: bills rely on it; closing one is an update of its status', async () => {
    db = await freshPostgres();
    const sub = await insertSubscriber(db.pool, { phoneNumber: '+12025550100' });
    const refused = (op: string) => ({ code: '23001', message: `${op} on subscribers refused: subscribers are closed, never deleted, and their id never changes` });
    await expect(db.pool.query('DELETE FROM subscribers WHERE id = $1', [sub])).rejects.toMatchObject(refused('DELETE'));
    await expect(db.pool.query('TRUNCATE subscribers CASCADE')).rejects.toMatchObject(refused('TRUNCATE'));
    await expect(db.pool.query('UPDATE subscribers SET id = gen_random_uuid() WHERE id = $1', [sub])).rejects.toMatchObject(refused('UPDATE'));
    const r = await db.pool.query(`UPDATE subscribers SET status = 'closed' WHERE id = $1 RETURNING id, status`, [sub]);
    expect(r.rows).toEqual([{ id: sub, status: 'closed' }]);
  });

  it('keeps issued bills immutable: only status and paid_cents change; lines, amounts and periods never; no delete of bills', async () => {
    db = await freshPostgres();
    const sub = await insertSubscriber(db.pool, { phoneNumber: '+12025550100' });
    const bill = await insertBill(db.pool, { subscriberId: sub, ...NY_PERIODS[0] });
    const refused = { code: '23001' };
    await expect(db.pool.query('UPDATE bills SET total_cents = 1 WHERE id = $1', [bill])).rejects.toMatchObject({ ...refused, message: `bill ${bill} is issued and immutable: only status and paid_cents may change` });
    await expect(db.pool.query(`UPDATE bills SET period_end = period_end + interval '1 day' WHERE id = $1`, [bill])).rejects.toMatchObject(refused);
    await expect(db.pool.query(`UPDATE bills SET lines = '[]' WHERE id = $1`, [bill])).rejects.toMatchObject({ ...refused, message: `bill ${bill} is issued and immutable: only status and paid_cents may change` });
    await expect(db.pool.query(`UPDATE bills SET lines = jsonb_set(lines::jsonb, '{0,amountCents}', '0')::json WHERE id = $1`, [bill])).rejects.toMatchObject(refused);
    // lines is a document kept as written: even a change of layout is a change.
    await expect(db.pool.query(`UPDATE bills SET lines = (lines::text || ' ')::json WHERE id = $1`, [bill])).rejects.toMatchObject(refused);
    await expect(db.pool.query('DELETE FROM bills WHERE id = $1', [bill])).rejects.toMatchObject({ ...refused, message: 'DELETE on bills refused: issued bills are immutable' });
    await expect(db.pool.query('TRUNCATE bills CASCADE')).rejects.toMatchObject(refused);

    const r = await db.pool.query(`UPDATE bills SET status = 'paid', paid_cents = 2000, lines = lines WHERE id = $1 RETURNING status, paid_cents, total_cents`, [bill]);
    expect(r.rows).toEqual([{ status: 'paid', paid_cents: 2000, total_cents: 2000 }]);
    const lines = await db.pool.query(`SELECT lines FROM bills WHERE id = $1`, [bill]);
    expect(lines.rows).toEqual([{ lines: [{ kind: 'monthly_service', description: 'Monthly service', calls: 0, billableSeconds: 0, amountCents: 2000 }] }]);
  });

  it('keeps lines an array of JSON and reads their 900 (premium) charges', async () => {
    db = await freshPostgres();
    const sub = await insertSubscriber(db.pool, { phoneNumber: '+12025550100' });
    await expect(insertBill(db.pool, { subscriberId: sub, ...NY_PERIODS[0], totalCents: 0, lines: {} as never })).rejects.toMatchObject({ code: '23514', constraint: 'bills_lines_check' });
    const premium = async (lines: string) => (await db!.pool.query('SELECT bill_premium_cents($1::json) AS c', [lines])).rows[0].c;
    expect(await premium('[{"kind":"monthly_service","amountCents":2000}]')).toBe(0);
    expect(await premium('[{"kind":"monthly_service","amountCents":2000},{"kind":"premium","amountCents":1990},{"kind":"late_usage","amountCents":500,"premiumCents":398}]')).toBe(2388);
    // Escaped, "premium" is not in the text as such, and is still counted.
    expect(await premium('[{"kind":"\\u0070remium","amountCents":199},{"kind":"late_usage","amountCents":5,"\\u0070remiumCents":4}]')).toBe(203);
  });

  it('a bill\'s insert moves its subscriber\'s cursor past it, forward only, and refuses a bill without the next period\'s end', async () => {
    db = await freshPostgres();
    const sub = await insertSubscriber(db.pool, { phoneNumber: '+12025550100' });
    const cursor = async () => (await db!.pool.query(`SELECT next_period_index AS index, next_period_end AS "end", last_watermark AS watermark
      FROM billing_cursors WHERE subscriber_id = $1`, [sub])).rows[0];
    // Opened with the subscriber, not placed yet.
    expect(await cursor()).toEqual({ index: 0, end: -Infinity, watermark: null });
    await insertBill(db.pool, { subscriberId: sub, ...NY_PERIODS[1], watermark: '2024-03-15T04:59:00Z' });
    expect(await cursor()).toEqual({ index: 2, end: new Date(NY_PERIODS[1].nextPeriodEnd), watermark: new Date('2024-03-15T04:59:00Z') });
    // A bill of an earlier period (a writer behind the cursor) goes in, and leaves the cursor where it is.
    await insertBill(db.pool, { subscriberId: sub, ...NY_PERIODS[0] });
    expect(await cursor()).toEqual({ index: 2, end: new Date(NY_PERIODS[1].nextPeriodEnd), watermark: new Date('2024-03-15T04:59:00Z') });
    // One statement with two periods of a subscriber: the cursor goes past the later one.
    const other = await insertSubscriber(db.pool, { phoneNumber: '+12025550101' });
    const p = NY_PERIODS;
    const row = (i: 0 | 1 | 2) => `${other}\t${p[i].periodIndex}\t${p[i].periodStart}\t${p[i].periodEnd}\t${p[i].periodStartLocal}\t${p[i].periodEndLocal}\t`
      + `${p[i].nextPeriodEnd}\t${p[i].issuedAt}\t${p[i].dueAt}\tUSD\t2000\t${p[i].issuedAt}\t[{"kind":"monthly_service","amountCents":2000}]\n`;
    const client = await db.pool.connect();
    try {
      await copyIn(client, `COPY bills (subscriber_id, period_index, period_start, period_end, period_start_local, period_end_local,
        next_period_end, issued_at, due_at, currency, total_cents, watermark, lines) FROM STDIN`, [2, 0, 1] as const, row);
    } finally {
      client.release();
    }
    const moved = await db.pool.query('SELECT next_period_index AS index, next_period_end AS "end", last_watermark AS watermark FROM billing_cursors WHERE subscriber_id = $1', [other]);
    expect(moved.rows).toEqual([{ index: 3, end: new Date(p[2].nextPeriodEnd), watermark: new Date(p[2].issuedAt) }]);
    // Without the next period's end, or with one not after the bill's own end: refused, nothing stored.
    const { nextPeriodEnd: _, ...withoutNext } = NY_PERIODS[2];
    const refused = { code: '23514', constraint: 'bills_next_period_end', table: 'bills', column: 'next_period_end' };
    await expect(insertBill(db.pool, { subscriberId: sub, ...withoutNext })).rejects.toMatchObject(refused);
    await expect(insertBill(db.pool, { subscriberId: sub, ...NY_PERIODS[2], nextPeriodEnd: NY_PERIODS[2].periodEnd })).rejects.toMatchObject(refused);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM bills WHERE subscriber_id = $1', [sub])).rows).toEqual([{ n: 2 }]);
    expect(await cursor()).toMatchObject({ index: 2 });
  });

  it('0033: a bill written before it (no next period\'s end) can still be paid', async () => {
    db = await freshPostgres({ migrate: false });
    const all = loadPgMigrations(BILLING_MIGRATIONS_DIR);
    await migratePostgres(db.pool, all.filter((m) => m.version < 33));
    const sub = await insertSubscriber(db.pool, { phoneNumber: '+12025550100' });
    const { nextPeriodEnd: _, ...before0033 } = NY_PERIODS[0];
    const bill = await insertBill(db.pool, { subscriberId: sub, ...before0033 });
    expect(await migratePostgres(db.pool, all)).toEqual(all.filter((m) => m.version >= 33).map((m) => m.version));
    const paid = await db.pool.query(`UPDATE bills SET paid_cents = total_cents, status = 'paid' WHERE id = $1 RETURNING status, next_period_end`, [bill]);
    expect(paid.rows).toEqual([{ status: 'paid', next_period_end: null }]);
  });

  it('0034: each group takes the position most of its members share, and they follow it; the others and the closed keep their own cursors; runs from before it count as settled', async () => {
    db = await freshPostgres({ migrate: false });
    const all = loadPgMigrations(BILLING_MIGRATIONS_DIR);
    await migratePostgres(db.pool, all.filter((m) => m.version < 34));
    const a = await insertSubscriber(db.pool, { phoneNumber: '+12025550100', subscriptionDate: '2024-01-15', timeZone: 'America/New_York' });
    const b = await insertSubscriber(db.pool, { phoneNumber: '+12025550101', subscriptionDate: '2024-01-15', timeZone: 'America/New_York' });
    const c = await insertSubscriber(db.pool, { phoneNumber: '+12025550102', subscriptionDate: '2024-01-15', timeZone: 'America/Chicago' });
    const e = await insertSubscriber(db.pool, { phoneNumber: '+12025550104', subscriptionDate: '2024-01-15', timeZone: 'America/New_York' });
    const f = await insertSubscriber(db.pool, { phoneNumber: '+12025550105', subscriptionDate: '2024-01-15', timeZone: 'America/New_York' });
    // New York: a, e and f billed for period 0 (f since closed), b not yet: a and e follow the group at period 1.
    for (const id of [a, e, f]) await insertBill(db.pool, { subscriberId: id, ...NY_PERIODS[0] });
    await db.pool.query(`UPDATE subscribers SET status = 'closed' WHERE id = $1`, [f]);
    await db.pool.query(`INSERT INTO billing_runs (as_of, status) VALUES ('2024-02-15T06:00:00Z', 'running')`);
    expect(await migratePostgres(db.pool, all)).toEqual(all.filter((m) => m.version >= 34).map((m) => m.version));
    const { rows } = await db.pool.query(`SELECT p.subscriber_id AS id, p.follows, p.next_period_index AS next, g.time_zone AS zone
      FROM billing_positions p JOIN billing_groups g ON g.id = p.group_id`);
    const byId = new Map(rows.map((r) => [r.id, { follows: r.follows, next: r.next, zone: r.zone }]));
    expect([a, b, c, e, f].map((id) => byId.get(id))).toEqual([
      { follows: true, next: 1, zone: 'America/New_York' },
      { follows: false, next: 0, zone: 'America/New_York' },
      { follows: true, next: 0, zone: 'America/Chicago' },
      { follows: true, next: 1, zone: 'America/New_York' },
      { follows: false, next: 1, zone: 'America/New_York' },
    ]);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM billing_groups')).rows).toEqual([{ n: 2 }]);
    expect((await db.pool.query('SELECT settled FROM billing_runs')).rows).toEqual([{ settled: true }]);
    // Subscribers created after it follow their group when none of it is billed (and no run is in progress).
    const d = await insertSubscriber(db.pool, { phoneNumber: '+12025550103', subscriptionDate: '2024-02-01', timeZone: 'America/New_York' });
    const g = await insertSubscriber(db.pool, { phoneNumber: '+12025550106', subscriptionDate: '2024-01-15', timeZone: 'America/New_York' });
    expect((await db.pool.query('SELECT subscriber_id AS id, follows FROM billing_cursors WHERE subscriber_id IN ($1, $2) ORDER BY follows', [d, g])).rows)
      .toEqual([{ id: g, follows: false }, { id: d, follows: true }]);
    await expect(db.pool.query('DELETE FROM billing_groups')).rejects.toMatchObject({ code: '23001' });
  });

  it('0031 keeps the lines of bills written before it, and their guards', async () => {
    db = await freshPostgres({ migrate: false });
    const all = loadPgMigrations(BILLING_MIGRATIONS_DIR);
    await migratePostgres(db.pool, all.filter((m) => m.version < 31));
    const sub = await insertSubscriber(db.pool, { phoneNumber: '+12025550100' });
    const lines = [{ kind: 'monthly_service', description: 'Monthly service', calls: 0, billableSeconds: 0, amountCents: 2000 },
      { kind: 'premium', description: 'Premium (pay-per-call)', calls: 1, billableSeconds: 60, amountCents: 199 }];
    const { nextPeriodEnd: _, ...before0033 } = NY_PERIODS[0];
    const bill = await insertBill(db.pool, { subscriberId: sub, ...before0033, lines });
    expect(await migratePostgres(db.pool, all)).toEqual(all.filter((m) => m.version >= 31).map((m) => m.version));
    const { rows } = await db.pool.query(`SELECT pg_typeof(lines)::text AS type, lines, bill_premium_cents(lines) AS premium FROM bills WHERE id = $1`, [bill]);
    expect(rows).toEqual([{ type: 'json', lines, premium: 199 }]);
    await expect(db.pool.query(`UPDATE bills SET lines = '[]' WHERE id = $1`, [bill])).rejects.toMatchObject({ code: '23001' });
    await expect(insertBill(db.pool, { subscriberId: 'f0000000-0000-4000-8000-000000000000', ...NY_PERIODS[1] })).rejects.toMatchObject({ code: '23503' });
  });
});
