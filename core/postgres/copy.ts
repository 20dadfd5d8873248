/**
 * COPY … FROM STDIN of rows built one text line at a time (COPY text format:
 * tab-separated, \N for NULL, values escaped with copyText), sent in 64 KiB
 * pieces so that no single string holds the whole batch.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
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
