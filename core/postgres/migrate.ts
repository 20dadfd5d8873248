/**
 * Versioned PostgreSQL migrations: numbered `NNNN_name.sql` files applied in
 * order, each in its own transaction together with its row in the
 * `schema_migrations` ledger, so a crash leaves either both or neither.
 * A session advisory lock serialises concurrent starters (two replicas
 * booting at once): the second waits, then finds nothing left to apply.
 * A file is sent as one simple-protocol query, so it may hold several
 * statements and `$$` function bodies.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Pool } from './pool.ts';

export interface PgMigration { version: number; name: string; sql: string }

/** Arbitrary but fixed: every phonebill process agrees on it (the lock is per database). */
export const MIGRATION_LOCK_KEY = 0x7068_6f6e; // 'phon'

export function loadPgMigrations(dir: string): PgMigration[] {
  const files = fs.readdirSync(dir).filter((f) => /^\d+_[\w.-]+\.sql$/.test(f)).sort();
  const out = files.map((f) => ({ version: Number(f.split('_')[0]), name: f.replace(/\.sql$/, ''), sql: fs.readFileSync(path.join(dir, f), 'utf8') }));
  const seen = new Set<number>();
  for (const m of out) {
    if (seen.has(m.version)) throw new Error(`two PostgreSQL migrations share version ${m.version} in ${dir}`);
    seen.add(m.version);
  }
  return out.sort((a, b) => a.version - b.version);
}

/** Applies every migration not yet in the ledger; returns the versions applied now. */
export async function migratePostgres(pool: Pool, migrations: PgMigration[], opts: { lockKey?: number } = {}): Promise<number[]> {
  const lockKey = opts.lockKey ?? MIGRATION_LOCK_KEY;
  const client = await pool.connect();
  const applied: number[] = [];
  let broken: Error | undefined;
  try {
    await client.query('SELECT pg_advisory_lock($1)', [lockKey]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now())`);
      const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
      const done = new Set(rows.map((r) => r.version));
      for (const m of migrations) {
        if (done.has(m.version)) continue;
        try {
          await client.query('BEGIN');
          await client.query(m.sql);
          await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
          await client.query('COMMIT');
        } catch (e) {
          await client.query('ROLLBACK').catch(() => {});
          throw new Error(`PostgreSQL migration ${m.name} failed: ${(e as Error).message}`, { cause: e });
        }
        applied.push(m.version);
      }
    } finally {
      // If unlocking fails the session may still hold the lock: destroy the
      // connection rather than return it to the pool, which releases the lock.
      await client.query('SELECT pg_advisory_unlock($1)', [lockKey]).catch((e: Error) => { broken = e; });
    }
  } finally {
    client.release(broken);
  }
  return applied;
}
