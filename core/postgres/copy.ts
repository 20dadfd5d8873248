/**
 * COPY … FROM STDIN of rows built one text line at a time (COPY text format:
 * tab-separated, \N for NULL, values escaped with copyText), written into
 * 64 KiB Buffers as they come, so that no single string holds the whole batch.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import type { PoolClient } from './pool.ts';

/** A value for COPY text format: backslash, tab, newline and carriage return escaped. */
export const copyText = (v: string) => v.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));

function* byteChunks<T>(items: Iterable<T>, line: (item: T) => string): Generator<Buffer> {
  const CHUNK = 1 << 16;
  let buf = Buffer.allocUnsafe(CHUNK * 2);
  let len = 0;
  for (const item of items) {
    const l = line(item);
    // A UTF-8 byte count is at most 3 per UTF-16 unit.
    if (buf.length - len < l.length * 3) {
      const next = Buffer.allocUnsafe(Math.max(buf.length * 2, len + l.length * 3));
      buf.copy(next, 0, 0, len);
      buf = next;
    }
    len += buf.write(l, len, 'utf8');
    if (len >= CHUNK) { yield buf.subarray(0, len); buf = Buffer.allocUnsafe(CHUNK * 2); len = 0; }
  }
  if (len) yield buf.subarray(0, len);
}

/** Runs `sql` (a COPY … FROM STDIN) on client with one line per item; line() ends each with '\n'. */
export async function copyIn<T>(client: PoolClient, sql: string, items: Iterable<T>, line: (item: T) => string): Promise<void> {
  await pipeline(Readable.from(byteChunks(items, line)), client.query(copyFrom(sql)));
}

/** PostgreSQL's binary COPY header (signature, flags, no extension) and trailer (a field count of -1). */
const BINARY_HEADER = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
const BINARY_TRAILER = Buffer.from([0xff, 0xff]);

/** Bytes picked out of a larger buffer: `spans` holds (start, end) pairs into `data`, in order. */
export interface ByteSpans { data: Buffer; spans: readonly number[] }

/** The bytes as one Buffer (the spans' copied together). */
export function bytesOf(b: Buffer | ByteSpans): Buffer {
  if (Buffer.isBuffer(b)) return b;
  const parts: Buffer[] = [];
  for (let i = 0; i < b.spans.length; i += 2) parts.push(b.data.subarray(b.spans[i], b.spans[i + 1]));
  return Buffer.concat(parts);
}

const PIECE = 1 << 16;

/**
 * The bytes in pieces of up to 64 KiB: views of a Buffer; spans copied into pieces of their own
 * (small, so the allocator reuses their memory: picking a catch-up chunk's ~46 MB of tuples for
 * each writer into one fresh Buffer cost page faults and the engine's memory-pressure collections
 * on the run's main thread), runs of adjacent spans longer than a piece sent as views.
 */
function* piecesOf(b: Buffer | ByteSpans): Generator<Buffer> {
  if (Buffer.isBuffer(b)) {
    for (let i = 0; i < b.length; i += PIECE) yield b.subarray(i, i + PIECE);
    return;
  }
  const { data, spans } = b;
  let piece = Buffer.allocUnsafe(PIECE);
  let len = 0;
  for (let i = 0; i < spans.length; i += 2) {
    let from = spans[i]!;
    let to = spans[i + 1]!;
    for (; i + 2 < spans.length && spans[i + 2] === to; i += 2) to = spans[i + 3]!;
    if (to - from >= PIECE) {
      if (len) { yield piece.subarray(0, len); piece = Buffer.allocUnsafe(PIECE); len = 0; }
      for (; from < to; from += PIECE) yield data.subarray(from, Math.min(from + PIECE, to));
      continue;
    }
    while (from < to) {
      const n = Math.min(to - from, PIECE - len);
      data.copy(piece, len, from, from + n);
      len += n;
      from += n;
      if (len === PIECE) { yield piece; piece = Buffer.allocUnsafe(PIECE); len = 0; }
    }
  }
  if (len) yield piece.subarray(0, len);
}

/**
 * Runs `sql` (a COPY … FROM STDIN (FORMAT binary)) with `tuples`, tuples of
 * PostgreSQL's binary COPY format back to back (or picked out of a larger
 * buffer): sent between the format's header and trailer in 64 KiB pieces.
 * Returns the rows stored, as the server counted them.
 */
export async function copyBinary(client: PoolClient, sql: string, tuples: Buffer | ByteSpans): Promise<number> {
  const copy = client.query(copyFrom(sql));
  await pipeline(Readable.from((function* () {
    yield BINARY_HEADER;
    yield* piecesOf(tuples);
    yield BINARY_TRAILER;
  })()), copy);
  return copy.rowCount;
}
