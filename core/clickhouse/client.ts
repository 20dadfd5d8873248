/**
 * The ClickHouse handle every service uses: one @clickhouse/client, backed by
 * the embedded chdb engine by default or by a server when CLICKHOUSE_URL is
 * set, so the same SQL runs on both. chdb ignores the client's `database`
 * option, so table names are always qualified through `table()`.
 */
import fs from 'node:fs';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';

export interface ClickHouse {
  readonly client: ClickHouseClient;
  readonly database: string;
  readonly embedded: boolean;
  /** `db`.`name`, for the only values ever interpolated into SQL: identifiers. */
  table(name: string): string;
  close(): Promise<void>;
}

export interface ClickHouseOptions {
  url?: string | undefined;
  user?: string;
  password?: string;
  database: string;
  /** Data folder of the embedded engine (used when url is not set). */
  chdbPath?: string;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function quoteIdent(name: string): string {
  if (!IDENT.test(name)) throw new TypeError(`not a plain identifier: ${JSON.stringify(name)}`);
  return `\`${name}\``;
}

export function createClickHouse(opts: ClickHouseOptions): ClickHouse {
  quoteIdent(opts.database);
  let client: ClickHouseClient;
  const embedded = !opts.url;
  if (opts.url) {
    client = createClient({
      url: opts.url,
      username: opts.user ?? 'default',
      password: opts.password ?? '',
      database: opts.database,
      request_timeout: 300_000,
      clickhouse_settings: { date_time_input_format: 'best_effort' },
    });
  } else {
    const dir = opts.chdbPath ?? '.data/chdb';
    fs.mkdirSync(dir, { recursive: true });
    // The chdb connection satisfies the client's Connection contract.
    client = createClient({ connection: createChdbConnection({ path: dir }) } as Parameters<typeof createClient>[0]);
  }
  return {
    client,
    database: opts.database,
    embedded,
    table: (name) => `${quoteIdent(opts.database)}.${quoteIdent(name)}`,
    close: () => client.close(),
  };
}

/** Rows of a SELECT as objects (JSONEachRow). */
export async function queryRows<T>(ch: ClickHouse, query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const rs = await ch.client.query({ query, query_params: params, format: 'JSONEachRow' });
  return rs.json<T>();
}
