/** Billing's PostgreSQL schema: the numbered files in billing/migrations. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPgMigrations, migratePostgres, type Pool } from '../../../core/postgres/index.ts';

export const BILLING_MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations');

/** Applies billing's pending migrations (idempotent, safe from concurrent starters); returns the versions applied. */
export function migrateBilling(pool: Pool): Promise<number[]> {
  return migratePostgres(pool, loadPgMigrations(BILLING_MIGRATIONS_DIR));
}
