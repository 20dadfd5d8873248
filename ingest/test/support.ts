/** Test plumbing for the ingest service: a real gRPC client, event builders, child processes. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { millisToTimestamp, phonebillV1 } from '../../core/grpc/proto.ts';
import type { CallEndEvent } from '../domain/event.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface Response {
  accepted: string;
  duplicates: string;
  rejected: string;
  rejections: { call_id: string; field: string; reason: string }[];
}

export type IngestClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

export function ingestClient(port: number): IngestClient {
  const { Ingest } = phonebillV1();
  return new Ingest(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  }) as unknown as IngestClient;
}

/** A valid call: US source, Canadian target, 90 s, starting `startMs`. */
export function call(id: string, startMs: number, over: Partial<CallEndEvent> = {}): CallEndEvent {
  return {
    call_id: id,
    source_number: '+12125550100',
    target_number: '+14165550123',
    start: millisToTimestamp(startMs),
    end: millisToTimestamp(startMs + 90_000),
    ...over,
  };
}

/** The proto's camel-free shape, as a client sends it. */
export const ts = millisToTimestamp;

type Cb = (err: grpc.ServiceError | null, res: Response) => void;

/** One RecordCalls stream carrying `events`, one per message. */
export function recordCalls(client: IngestClient, events: CallEndEvent[]): Promise<Response> {
  return new Promise((resolve, reject) => {
    const stream = client.RecordCalls(((err, res) => (err ? reject(err) : resolve(res))) as Cb) as grpc.ClientWritableStream<CallEndEvent>;
    for (const e of events) stream.write(e);
    stream.end();
  });
}

/** One RecordCallBatches stream, one message per inner array. */
export function recordBatches(client: IngestClient, batches: CallEndEvent[][]): Promise<Response> {
  return new Promise((resolve, reject) => {
    const stream = client.RecordCallBatches(((err, res) => (err ? reject(err) : resolve(res))) as Cb) as grpc.ClientWritableStream<{ calls: CallEndEvent[] }>;
    for (const calls of batches) stream.write({ calls });
    stream.end();
  });
}

export function recordOne(client: IngestClient, event: CallEndEvent): Promise<Response> {
  return new Promise((resolve, reject) => {
    client.RecordCall(event, ((err, res) => (err ? reject(err) : resolve(res))) as Cb);
  });
}

/** An open RecordCallBatches stream the test writes to at its own pace (respecting flow control). */
export function openBatchStream(client: IngestClient) {
  let stream!: grpc.ClientWritableStream<{ calls: CallEndEvent[] }>;
  const response = new Promise<Response>((resolve, reject) => {
    stream = client.RecordCallBatches(((err, res) => (err ? reject(err) : resolve(res))) as Cb) as grpc.ClientWritableStream<{ calls: CallEndEvent[] }>;
  });
  response.catch(() => {});
  return {
    stream,
    response,
    /** Resolves once the message is handed to HTTP/2 (waits for 'drain' when the buffer is full). */
    write(calls: CallEndEvent[]): Promise<void> {
      return new Promise((resolve) => {
        if (stream.write({ calls })) resolve();
        else stream.once('drain', () => resolve());
      });
    },
    end: () => stream.end(),
  };
}

export interface ChildIngest {
  child: ChildProcess;
  grpcPort: number;
  httpPort: number;
  exited: Promise<number | null>;
  stderr: () => string;
}

/** Starts `ingest/main.ts` in its own process on `dataDir`, ports 0; resolves once it logged its ports. */
export async function spawnIngest(dataDir: string, env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<ChildIngest> {
  // node itself with tsx's loader, not the tsx CLI: the CLI runs the program in a
  // grandchild, which a SIGKILL of the CLI would orphan and whose RSS we could not see.
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', path.join(ROOT, 'ingest/main.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      PHONEBILL_DATA_DIR: dataDir,
      CHDB_PATH: path.join(dataDir, 'chdb'),
      INGEST_PORT: '0',
      INGEST_HTTP_PORT: '0',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d) => { err += d; if (err.length > 100_000) err = err.slice(-50_000); });
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const lines = readline.createInterface({ input: child.stdout! });
  const ports = await new Promise<{ grpcPort: number; httpPort: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ingest child did not start in 60 s: ${err}`)), 60_000);
    lines.on('line', (line) => {
      try {
        const j = JSON.parse(line) as { msg?: string; grpcPort?: number; httpPort?: number };
        if (j.msg === 'ingest listening') { clearTimeout(timer); resolve({ grpcPort: j.grpcPort!, httpPort: j.httpPort! }); }
      } catch { /* not JSON */ }
    });
    exited.then((code) => { clearTimeout(timer); reject(new Error(`ingest child exited with ${code} before listening: ${err}`)); });
  });
  lines.on('line', () => {}); // keep draining stdout so the child never blocks on a full pipe
  return { child, ...ports, exited, stderr: () => err };
}

/** POST /sql to a running ingest service; rows of the JSONCompact answer. */
export async function sqlOver(httpPort: number, statement: string): Promise<unknown[][]> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/sql`, { method: 'POST', body: statement });
  const body = (await res.json()) as { data?: unknown[][]; error?: string };
  if (res.status !== 200) throw new Error(`POST /sql ${res.status}: ${body.error}`);
  return body.data!;
}

/** VmRSS of a process in bytes (Linux). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Valid subscriber numbers for generated traffic (New York and Toronto). */
export const SOURCES: readonly string[] = Array.from({ length: 2000 }, (_, i) => `+1${i % 2 ? '212' : '416'}555${1000 + (i % 9000)}`);

/** A valid call for generated traffic: start within the last day of `nowMs`, 30 s to 10 min long. */
export function genCall(id: string, n: number, nowMs: number): CallEndEvent {
  const start = nowMs - 3_600_000 - ((n * 7919) % 80_000_000);
  return {
    call_id: id,
    source_number: SOURCES[n % SOURCES.length]!,
    target_number: SOURCES[(n * 31 + 7) % SOURCES.length]!,
    start: millisToTimestamp(start),
    end: millisToTimestamp(start + 30_000 + ((n * 104_729) % 570_000)),
  };
}
