/**
 * A private PostgreSQL database per test: created on the local server
 * (DATABASE_URL, or the stack's default), migrated with billing's schema,
 * dropped by close().
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createPool, type Pool } from '../core/postgres/index.ts';
import { migrateBilling } from '../billing/adapters/postgres/migrate.ts';

const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/phonebill';

export interface FreshPostgres {
  pool: Pool;
  /** Connection URL of the private database (for child processes). */
  url: string;
  database: string;
  /** Ends the pool and drops the database. */
  close(): Promise<void>;
}

async function admin<T>(baseUrl: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: baseUrl });
  await c.connect();
  try { return await fn(c); } finally { await c.end(); }
}

export async function freshPostgres(opts: { migrate?: boolean; prefix?: string } = {}): Promise<FreshPostgres> {
  const baseUrl = process.env.DATABASE_URL || DEFAULT_URL;
  // Only [a-z0-9_] ever reaches the identifier below.
  const database = `${opts.prefix ?? 't'}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await admin(baseUrl, (c) => c.query(`CREATE DATABASE "${database}"`));
  const u = new URL(baseUrl);
  u.pathname = `/${database}`;
  const url = u.toString();
  const pool = createPool(url, { max: 5, applicationName: 'phonebill-test' });
  if (opts.migrate !== false) await migrateBilling(pool);
  let closed = false;
  return {
    pool, url, database,
    close: async () => {
      if (closed) return;
      closed = true;
      await pool.end();
      await admin(baseUrl, (c) => c.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`));
    },
  };
}
