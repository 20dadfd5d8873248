/** PostgreSQL plumbing shared by every service: the pool and the migration runner. */
export { createPool, withTransaction, type Pool, type PoolClient, type PoolOptions } from './pool.ts';
export { migratePostgres, loadPgMigrations, MIGRATION_LOCK_KEY, type PgMigration } from './migrate.ts';
export { bytesOf, copyBinary, copyIn, copyText, type ByteSpans } from './copy.ts';
