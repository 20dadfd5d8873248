/**
 * The ClickHouse handle every service uses: one @clickhouse/client, backed by
 * the embedded chdb engine by default or by a server when CLICKHOUSE_URL is
 * set, so the same SQL runs on both. chdb ignores the client's `database`
 * option, so table names are always qualified through `table()`.
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';

export interface ClickHouse {
  readonly client: ClickHouseClient;
  readonly database: string;
  readonly embedded: boolean;
  /** `db`.`name`, for the only values ever interpolated into SQL: identifiers. */
  table(name: string): string;
  /**
   * A handle whose statements run beside this one's. The embedded engine runs one statement at a
   * time per connection (a statement waits for the one before it), so this is a second
   * connection to the same engine (the same data folder, opened once per process), made on
   * first use and closed with this handle. A server runs a client's requests at once: there,
   * the handle itself.
   */
  beside(): ClickHouse;
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
  let connect = (): ClickHouseClient => client;
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
    connect = () => createClient({ connection: createChdbConnection({ path: dir }) } as Parameters<typeof createClient>[0]);
    client = connect();
  }
  const table = (name: string) => `${quoteIdent(opts.database)}.${quoteIdent(name)}`;
  let other: ClickHouse | undefined;
  const ch: ClickHouse = {
    client,
    database: opts.database,
    embedded,
    table,
    beside() {
      if (!embedded) return ch;
      if (!other) {
        const c = connect();
        other = { client: c, database: opts.database, embedded, table, beside: () => ch, close: () => c.close() };
      }
      return other;
    },
    async close() {
      const o = other;
      other = undefined;
      await Promise.all([client.close(), o?.close()]);
    },
  };
  return ch;
}

/** Rows of a SELECT as objects (JSONEachRow). */
export async function queryRows<T>(ch: ClickHouse, query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const rs = await ch.client.query({ query, query_params: params, format: 'JSONEachRow' });
  return rs.json<T>();
}

/** The part of chdb's connection extension (chdb/connection's `.chdb`) phonebill uses. */
export interface ChdbExtension {
  rawInsert(p: { table: string; columns: readonly string[]; values: Buffer; format: 'TabSeparated'; settings: Record<string, number> }): Promise<unknown>;
  queryStream(sql: string, opts: { format: string }): AsyncIterable<{ raw(): Uint8Array }>;
}

/**
 * The embedded engine's zero-copy insert and streaming query, when `ch` runs
 * on chdb. Through @clickhouse/client a chdb insert turns its body into V8
 * strings three times (stream to string, statement plus body, native copy)
 * and a query result is materialised whole. The chdb connection is not part
 * of the client's public surface, hence the duck-typed lookup; without it (a
 * server) callers use the portable path.
 */
export function chdbExtension(ch: ClickHouse): ChdbExtension | undefined {
  if (!ch.embedded) return undefined;
  const ext = (ch as { chdb?: unknown }).chdb
    ?? (ch.client as unknown as { connection?: { chdb?: unknown } }).connection?.chdb;
  const e = ext as ChdbExtension | undefined;
  return e && typeof e.rawInsert === 'function' && typeof e.queryStream === 'function' ? e : undefined;
}

/**
 * Inserts TabSeparated bytes into `table` of ch's database: zero-copy on the
 * embedded engine, one streamed body on a server. Settings are numeric
 * ClickHouse settings applied to this insert.
 */
export async function insertTabSeparated(ch: ClickHouse, table: string, columns: readonly string[], tsv: Buffer, settings: Record<string, number> = {}): Promise<void> {
  if (tsv.length === 0) return;
  const chdb = chdbExtension(ch);
  if (chdb) {
    quoteIdent(table);
    // chdb validates the name as a plain identifier path (no backquotes); both parts are validated identifiers.
    await chdb.rawInsert({ table: `${ch.database}.${table}`, columns, values: tsv, format: 'TabSeparated', settings });
    return;
  }
  await ch.client.insert({
    table: ch.table(table),
    columns: columns as [string, ...string[]],
    format: 'TabSeparated',
    // The client refuses a plain string for TabSeparated; one chunk, not object mode.
    values: Readable.from([tsv], { objectMode: false }),
    clickhouse_settings: Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, String(v)])),
  });
}

/**
 * A query's result as the bytes ClickHouse sent, in `format` (appended to the
 * query): for results that go on as bytes (rendered text spliced into a COPY),
 * never decoded into V8 strings and encoded again. One Buffer, not copied, on
 * the embedded engine; the response body, concatenated, on a server.
 */
export async function queryBytes(ch: ClickHouse, query: string, params: Record<string, unknown>, format = 'TabSeparatedRaw'): Promise<Buffer> {
  const { stream } = await ch.client.exec({ query: `${query}\nFORMAT ${format}`, query_params: params });
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer | Uint8Array | string>) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array));
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}
