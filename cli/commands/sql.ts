/**
 * `phonebill sql "SELECT …"` (also `npm run sql -- "SELECT …"`): one
 * read-only query against the configured ClickHouse, printed as a table.
 */
import { parseArgs } from 'node:util';
import type { CliCommand } from '../command.ts';
import { loadConfig, ConfigError } from '../../core/config.ts';
import { runSql, SqlError, serviceSqlUrl } from '../lib/sql-client.ts';
import { formatTable } from '../lib/table.ts';

const usage = `Usage: phonebill sql [--format table|json] "SELECT …"

Runs one read-only statement (SELECT, SHOW, DESCRIBE, EXPLAIN, WITH … SELECT)
against the configured ClickHouse and prints the answer.

The running ingest service is asked first (POST /sql on INGEST_HTTP_PORT,
default 9464), because an embedded data folder belongs to one process at a
time; when no service runs, the embedded folder (PHONEBILL_DATA_DIR/chdb) or
CLICKHOUSE_URL is opened directly. Writes are refused either way.

Tables live in the database CLICKHOUSE_DATABASE (default phonebill): write
phonebill.calls and phonebill.rejected_calls.

Options:
  --format table   aligned text table, then "N rows" (default)
  --format json    {"meta":[{name,type}],"data":[[…]],"rows":N} on one line

Examples:
  phonebill sql "SELECT call_class, count() AS calls FROM phonebill.calls GROUP BY call_class"
  npm run sql -- "SELECT field, reason, count() FROM phonebill.rejected_calls GROUP BY ALL ORDER BY 3 DESC"`;

export const command: CliCommand = {
  summary: 'run a read-only SQL query against the calls in ClickHouse and print a table',
  usage,
  async run(argv) {
    let args;
    try {
      args = parseArgs({ args: argv, allowPositionals: true, options: { format: { type: 'string', default: 'table' } } });
    } catch (e) {
      console.error(`phonebill sql: ${(e as Error).message}\n\n${usage}`);
      return 2;
    }
    const query = args.positionals.join(' ').trim();
    const format = args.values.format;
    if (!query) { console.error(`phonebill sql: give the query as an argument\n\n${usage}`); return 2; }
    if (format !== 'table' && format !== 'json') { console.error(`phonebill sql: --format must be table or json, got ${JSON.stringify(format)}`); return 2; }
    let cfg;
    try { cfg = loadConfig(); } catch (e) {
      if (e instanceof ConfigError) { console.error(`phonebill sql: ${e.message}`); return 2; }
      throw e;
    }
    try {
      const r = await runSql(cfg, query);
      if (format === 'json') console.log(JSON.stringify({ meta: r.meta, data: r.data, rows: r.rows }));
      else console.log(formatTable(r.meta, r.data));
      return 0;
    } catch (e) {
      if (!(e instanceof SqlError)) throw e;
      const where = e.kind === 'refused' ? 'refused' : e.kind === 'unavailable' ? 'unavailable' : 'query failed';
      console.error(`phonebill sql: ${where}: ${e.message}`);
      if (e.kind === 'refused') console.error('Only read-only statements run here (SELECT, SHOW, DESCRIBE, EXPLAIN); data changes go through the ingest service.');
      if (e.kind === 'unavailable') console.error(`(asked ${serviceSqlUrl(cfg)} first)`);
      return e.kind === 'refused' ? 3 : 1;
    }
  },
};
