/**
 * PostgreSQL connection pool. Type parsing is fixed here once for every
 * caller: `bigint` (cents, counts) arrives as a JS number — refused when it
 * would not be exact — and `date` as its 'YYYY-MM-DD' text, because pg's
 * default turns a calendar date into a Date at the *process's* local
 * midnight, which shifts it a day in half the world.
 */
import pg from 'pg';

const INT8 = 20;
const DATE = 1082;

function parseInt8(s: string): number {
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new RangeError(`bigint ${s} exceeds Number.MAX_SAFE_INTEGER`);
  return n;
}

const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8) return parseInt8;
    if (oid === DATE) return (s: string) => s;
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

export interface PoolOptions {
  /** Most connections held (pg default 10). */
  max?: number;
  /** Label shown in pg_stat_activity. */
  applicationName?: string;
}

export function createPool(url: string, opts: PoolOptions = {}): Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 10,
    application_name: opts.applicationName ?? 'phonebill',
    types: types as unknown as pg.CustomTypesConfig,
  });
  // An idle client losing its connection (server restart) must not crash the
  // process: the pool drops it and the next query opens a new one.
  pool.on('error', () => {});
  return pool;
}

/** Runs fn inside BEGIN … COMMIT on one client, rolling back on any error. */
export async function withTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const out = await fn(client);
    await client.query('COMMIT');
    return out;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    client.release();
  }
}
