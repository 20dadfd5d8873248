/**
 * Runs one read-only SQL statement against the configured ClickHouse for
 * `phonebill sql`. An embedded data folder belongs to one process at a time,
 * so the running ingest service is asked first (POST /sql on its HTTP port);
 * only when nothing listens there is ClickHouse opened directly (embedded
 * folder or CLICKHOUSE_URL), after the same read-only check the service makes.
 */
import fs from 'node:fs';
import type { ClickHouseSettings } from '@clickhouse/client';
import type { Config } from '../../core/config.ts';
import { createClickHouse } from '../../core/clickhouse/client.ts';
import { isDomainError } from '../../core/errors.ts';
import { readOnlySettings, readOnlyStatement } from '../../core/clickhouse/readonly.ts';
import type { Column } from './table.ts';

export interface SqlResult {
  meta: Column[];
  data: unknown[][];
  rows: number;
  /** Where the answer came from: 'service' (its /sql), 'embedded' (the chdb folder) or 'server' (CLICKHOUSE_URL). */
  via: 'service' | 'embedded' | 'server';
}

export type SqlErrorKind = 'refused' | 'failed' | 'unavailable';

export class SqlError extends Error {
  override name = 'SqlError';
  constructor(readonly kind: SqlErrorKind, message: string, opts?: { cause?: unknown }) { super(message, opts); }
}

export function serviceSqlUrl(cfg: Pick<Config, 'host' | 'ingestHttpPort'>): string {
  const host = cfg.host === '0.0.0.0' || cfg.host === '::' || cfg.host === '' ? '127.0.0.1' : cfg.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${cfg.ingestHttpPort}/sql`;
}

const isRefused = (e: unknown): boolean => {
  const c = (e as { cause?: { code?: string; errors?: { code?: string }[] } }).cause;
  return c?.code === 'ECONNREFUSED' || (c?.errors ?? []).some((x) => x.code === 'ECONNREFUSED');
};

/** Asks the running service; undefined when nothing listens on its HTTP port. */
export async function sqlViaService(url: string, query: string, opts: { database?: string; timeoutMs?: number } = {}): Promise<SqlResult | undefined> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', body: query, headers: { 'content-type': 'text/plain; charset=utf-8' }, signal: AbortSignal.timeout(opts.timeoutMs ?? 300_000) });
  } catch (e) {
    if (isRefused(e)) return undefined;
    throw new SqlError('unavailable', `the ingest service at ${url} did not answer: ${(e as Error).message}`, { cause: e });
  }
  const body = await res.text();
  let json: Record<string, unknown> | undefined;
  try { json = JSON.parse(body) as Record<string, unknown>; } catch { /* reported below */ }
  if (res.status === 400) {
    const msg = String(json?.error ?? body);
    throw new SqlError(refusal(msg) ? 'refused' : 'failed', hint(msg, opts.database ?? 'phonebill'));
  }
  if (res.status === 404) throw new SqlError('unavailable', `${url} answered 404: is something other than the phonebill ingest service listening on that port (INGEST_HTTP_PORT)?`);
  if (!res.ok || !json) throw new SqlError('failed', `${url} answered ${res.status}: ${String(json?.error ?? body).slice(0, 500)}`);
  return { meta: json.meta as Column[], data: json.data as unknown[][], rows: Number(json.rows), via: 'service' };
}

/** Opens ClickHouse in this process (no service running). */
export async function sqlDirect(cfg: Config, query: string): Promise<SqlResult> {
  if (!cfg.clickhouseUrl && !fs.existsSync(cfg.chdbPath!)) {
    throw new SqlError('unavailable',
      `no embedded ClickHouse data in ${cfg.chdbPath} yet. Load some calls first (\`npm start\`, then \`phonebill ingest FILE\`; or \`npm run demo\`), `
      + 'or point PHONEBILL_DATA_DIR / CHDB_PATH at an existing folder, or CLICKHOUSE_URL at a server.');
  }
  const ch = createClickHouse({ url: cfg.clickhouseUrl, user: cfg.clickhouseUser, password: cfg.clickhousePassword, database: cfg.clickhouseDatabase, chdbPath: cfg.chdbPath! });
  try {
    let statement: string;
    try {
      // The canonical text is what was checked, so it is what runs.
      statement = await readOnlyStatement(ch, query);
    } catch (e) {
      if (!isDomainError(e)) throw lockedOr(e, cfg);
      throw new SqlError(refusal(e.message) ? 'refused' : 'failed', hint(e.message, cfg.clickhouseDatabase), { cause: e });
    }
    try {
      const rs = await ch.client.query({ query: statement, format: 'JSONCompact', clickhouse_settings: readOnlySettings(ch) as ClickHouseSettings | undefined });
      const json = (await rs.json()) as unknown as { meta: Column[]; data: unknown[][]; rows: number };
      return { meta: json.meta, data: json.data, rows: Number(json.rows), via: ch.embedded ? 'embedded' : 'server' };
    } catch (e) {
      throw lockedOr(e, cfg);
    }
  } finally {
    await ch.close().catch(() => undefined);
  }
}

function lockedOr(e: unknown, cfg: Config): SqlError {
  const msg = (e as Error).message;
  if (/Cannot lock file|Code: 76\b/.test(msg)) {
    return new SqlError('unavailable', `the embedded ClickHouse folder ${cfg.chdbPath} is in use by another process, and no service answered on its HTTP port: is the ingest service running with another INGEST_HTTP_PORT?`, { cause: e });
  }
  return new SqlError('failed', hint(msg, cfg.clickhouseDatabase), { cause: e });
}

/** The read-only check's own refusals (a write, OUTFILE, FORMAT, an empty statement), as opposed to a query the engine could not run. */
const refusal = (msg: string) => /are allowed|is not allowed|is empty/.test(msg);

/** The embedded engine ignores a default database: point analysts at the qualified name. */
function hint(msg: string, db: string): string {
  const m = /Unknown table expression identifier '([^']+)'/.exec(msg) ?? /Table (\S+) does not exist/.exec(msg);
  if (m && !m[1]!.includes('.')) return `${msg}\nhint: qualify tables with the database, e.g. ${db}.${m[1]!.replace(/`/g, '')}`;
  return msg;
}

/** The service first, ClickHouse directly when no service listens. */
export async function runSql(cfg: Config, query: string): Promise<SqlResult> {
  return (await sqlViaService(serviceSqlUrl(cfg), query, { database: cfg.clickhouseDatabase })) ?? sqlDirect(cfg, query);
}
