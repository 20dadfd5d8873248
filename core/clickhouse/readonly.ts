/**
 * Read-only SQL from people (`npm run sql`, the ingest service's POST /sql):
 * one statement that only reads, checked by ClickHouse's own parser.
 *
 * `SET readonly = 1` is not an option on the embedded engine: chdb turns
 * clickhouse_settings into SET statements on its one shared session, which
 * would make the whole process read-only. Instead the statement is parsed by
 * `formatQuery` (the text travels as a query parameter, so it is never
 * executed, and a second statement is a parse error), and the kind of its
 * top AST node (`EXPLAIN AST` of the canonical text) must be a read. With a
 * server, the query also runs with readonly = 1 as a second fence.
 */
import { invalid } from '../errors.ts';
import type { ClickHouse } from './client.ts';

const READ_NODES = /^(SelectWithUnionQuery|SelectIntersectExceptQuery|Show\w*|Describe\w*|Exists\w*|Explain)\b/;
const OUTFILE = /\bINTO\s+OUTFILE\b/i;
const FORMAT_CLAUSE = /\bFORMAT\s+\w+\s*$/i;

/** Throws DomainError('invalid', field 'sql') unless `sql` is exactly one read statement. */
export async function assertReadOnlyQuery(ch: ClickHouse, sql: string): Promise<void> {
  await readOnlyStatement(ch, sql);
}

/**
 * The canonical text of `sql` (ClickHouse's own formatting: one statement,
 * no comments, no trailing semicolon), after checking that it only reads.
 * Run this text, not the original: it is the statement that was checked.
 */
export async function readOnlyStatement(ch: ClickHouse, sql: string): Promise<string> {
  if (sql.trim() === '') throw invalid('sql', 'is empty');
  let canonical: string;
  try {
    const rs = await ch.client.query({ query: 'SELECT formatQuery({q:String}) AS q', query_params: { q: sql }, format: 'JSONEachRow' });
    canonical = (await rs.json<{ q: string }>())[0]!.q;
  } catch (e) {
    throw invalid('sql', firstLine(e));
  }
  // exec, not query: query() appends its own FORMAT, which the inner statement would absorb.
  let node: string;
  try {
    const res = await ch.client.exec({ query: `EXPLAIN AST ${canonical}` });
    // The embedded engine answers in CSV (quoted), a server in TabSeparated.
    node = (await streamText(res.stream)).split('\n', 1)[0]!.replace(/^"|"$/g, '').trim();
  } catch (e) {
    throw invalid('sql', firstLine(e));
  }
  if (!READ_NODES.test(node)) {
    throw invalid('sql', `only SELECT, WITH … SELECT, SHOW, DESCRIBE, EXISTS and EXPLAIN are allowed, got ${/^\w+/.exec(node)?.[0] ?? 'an unknown statement'}`);
  }
  if (OUTFILE.test(canonical)) throw invalid('sql', 'INTO OUTFILE is not allowed: the statement must only read');
  if (FORMAT_CLAUSE.test(canonical)) throw invalid('sql', 'a FORMAT clause is not allowed: results come back in a fixed format');
  return canonical;
}

/** Settings for running a checked statement: readonly = 1 on a server, nothing on the embedded engine (see above). */
export function readOnlySettings(ch: ClickHouse): { readonly: '1' } | undefined {
  return ch.embedded ? undefined : { readonly: '1' };
}

async function streamText(stream: AsyncIterable<Buffer | string>): Promise<string> {
  let s = '';
  for await (const chunk of stream) s += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
  return s;
}

/** ClickHouse messages run long (the whole query echoed); the first sentence says what is wrong. */
function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n', 1)[0]!.replace(/\s*:\s*In scope SELECT formatQuery.*$/s, '').slice(0, 500);
}
