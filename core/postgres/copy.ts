/**
 * COPY … FROM STDIN of rows built one text line at a time (COPY text format:
 * tab-separated, \N for NULL, values escaped with copyText), sent in 64 KiB
 * pieces so that no single string holds the whole batch.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import type { PoolClient } from './pool.ts';

/** NULL in COPY text format. */
export const COPY_NULL = '\\N';

/** A value for COPY text format: backslash, tab, newline and carriage return escaped. */
export const copyText = (v: string) => v.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));

function* pieces<T>(items: Iterable<T>, line: (item: T) => string): Generator<string> {
  let buf = '';
  for (const item of items) {
    buf += line(item);
    if (buf.length > 1 << 16) { yield buf; buf = ''; }
  }
  if (buf) yield buf;
}

/** Runs `sql` (a COPY … FROM STDIN) on client with one line per item; line() ends each with '\n'. */
export async function copyIn<T>(client: PoolClient, sql: string, items: Iterable<T>, line: (item: T) => string): Promise<void> {
  await pipeline(Readable.from(pieces(items, line)), client.query(copyFrom(sql)));
}

const UNESCAPE: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\' };

/** A COPY text field as its value (COPY_NULL stays as it is: test for it before calling). */
const copyValue = (f: string) => (f.includes('\\') ? f.replace(/\\(.)/g, (_, c: string) => UNESCAPE[c] ?? c) : f);

/**
 * Runs `sql` (a COPY … TO STDOUT) on client and returns its rows, each field
 * unescaped (NULL stays COPY_NULL). For reading hundreds of thousands of
 * narrow rows: no per-row object or type parsing.
 */
export async function copyOutRows(client: PoolClient, sql: string): Promise<string[][]> {
  const chunks: Buffer[] = [];
  await pipeline(client.query(copyTo(sql)), async (source: AsyncIterable<Buffer>) => { for await (const c of source) chunks.push(c); });
  const text = Buffer.concat(chunks).toString('utf8');
  const rows: string[][] = [];
  for (let pos = 0; pos < text.length;) {
    const end = text.indexOf('\n', pos);
    const row = text.slice(pos, end).split('\t');
    for (let i = 0; i < row.length; i++) if (row[i] !== COPY_NULL) row[i] = copyValue(row[i]!);
    rows.push(row);
    pos = end + 1;
  }
  return rows;
}
