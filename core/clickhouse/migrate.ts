/**
 * Versioned ClickHouse migrations: numbered .sql files in ./migrations,
 * applied in order, each recorded in the `schema_migrations` ledger. Running
 * it again applies nothing new; every statement is itself idempotent
 * (IF NOT EXISTS) so a crash between a statement and its ledger row is safe.
 * `{db}` in a file stands for the quoted database name.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { quoteIdent, queryRows, type ClickHouse } from './client.ts';

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

export interface Migration { version: number; name: string; statements: string[] }

export function loadMigrations(dir = DIR): Migration[] {
  return fs.readdirSync(dir)
    .filter((f) => /^\d+_.+\.sql$/.test(f))
    .sort()
    .map((f) => {
      const sql = fs.readFileSync(path.join(dir, f), 'utf8');
      const statements = sql
        .split(/;\s*$/m)
        .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
        .filter(Boolean);
      return { version: Number(f.split('_')[0]), name: f.replace(/\.sql$/, ''), statements };
    });
}

export async function migrateClickHouse(ch: ClickHouse, migrations = loadMigrations()): Promise<number[]> {
  const db = quoteIdent(ch.database);
  await ch.client.command({ query: `CREATE DATABASE IF NOT EXISTS ${db}` });
  await ch.client.command({
    query: `CREATE TABLE IF NOT EXISTS ${ch.table('schema_migrations')} (version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY version`,
  });
  const done = new Set(
    (await queryRows<{ version: number }>(ch, `SELECT DISTINCT version FROM ${ch.table('schema_migrations')}`)).map((r) => Number(r.version)),
  );
  const applied: number[] = [];
  for (const m of migrations) {
    if (done.has(m.version)) continue;
    for (const st of m.statements) await ch.client.command({ query: st.replaceAll('{db}', db) });
    await ch.client.insert({ table: ch.table('schema_migrations'), values: [{ version: m.version, name: m.name }], format: 'JSONEachRow' });
    applied.push(m.version);
  }
  return applied;
}
