/** Shared test plumbing: a private ClickHouse database per test, temp folders. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createClickHouse, type ClickHouse } from '../core/clickhouse/client.ts';
import { migrateClickHouse } from '../core/clickhouse/migrate.ts';

export const uniqueName = (prefix: string) => `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;

export const tempDir = (prefix = 'phonebill-test-') => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

let shared: ClickHouse | undefined;
/**
 * The embedded engine binds one data folder per process (and vitest forks one
 * process per file), so tests share that folder but each gets its own
 * database, created and migrated here. With CLICKHOUSE_URL set, a server is used.
 */
export async function freshClickHouse(prefix = 't'): Promise<ClickHouse> {
  const database = uniqueName(prefix);
  const url = process.env.CLICKHOUSE_URL || undefined;
  if (!shared || url) {
    shared = createClickHouse({ url, user: process.env.CLICKHOUSE_USER, password: process.env.CLICKHOUSE_PASSWORD, database: 'default', chdbPath: tempDir('phonebill-chdb-') });
  }
  const base = shared;
  const table = (name: string) => `\`${database}\`.\`${name}\``;
  const ch: ClickHouse = {
    client: base.client,
    database,
    embedded: base.embedded,
    table,
    // The shared engine's second connection (closed with it), naming this test's tables.
    beside: () => ({ client: base.beside().client, database, embedded: base.embedded, table, beside: () => ch, close: async () => {} }),
    close: async () => { await base.client.command({ query: `DROP DATABASE IF EXISTS \`${database}\`` }).catch(() => {}); },
  };
  await migrateClickHouse(ch);
  return ch;
}
