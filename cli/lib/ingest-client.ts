/**
 * A client for phonebill.v1.Ingest that pushes many calls fast and safely:
 * a few concurrent client streams, each carrying many messages and then
 * closed so that its response (sent only once every event in it is durable)
 * arrives regularly; writes wait for gRPC flow control ('drain'), so a slow
 * service slows the sender instead of filling its memory.
 *
 * Used by `phonebill ingest`, the demo and the benchmark's load generator.
 */
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { phonebillV1, type Timestamp } from '../../core/grpc/proto.ts';

export interface WireEvent {
  call_id: string;
  source_number: string;
  target_number: string;
  start: Timestamp | null;
  end: Timestamp | null;
}

export interface Rejection { call_id: string; field: string; reason: string }
export interface IngestResponse { accepted: number; duplicates: number; rejected: number; rejections: Rejection[] }

export type IngestMethod = 'RecordCallBatches' | 'RecordCalls';

export const DEFAULT_INGEST_ADDR = '127.0.0.1:50052';

/** The service could not be reached at all: nothing was sent. */
export class IngestUnreachable extends Error {
  override name = 'IngestUnreachable';
  constructor(readonly addr: string, cause: unknown) {
    super(`cannot reach the ingest service at ${addr} (${cause instanceof Error ? cause.message : String(cause)})`, { cause });
  }
}

/** A stream broke: what was acknowledged before is durable, the rest is unknown. */
export class StreamFailed extends Error {
  override name = 'StreamFailed';
  constructor(readonly totals: SendTotals, readonly unacknowledged: number, cause: unknown) {
    super(`an ingest stream failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

export interface SendTotals { sent: number; acknowledged: number; accepted: number; duplicates: number; rejected: number; streams: number }

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // A service that vanished without closing the connection is noticed in seconds.
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
  // grpc-js buffers up to this many bytes of a stream's sent messages for
  // transparent retries and copies that buffer on every write completion:
  // with one-call messages that quadratic copy was the load generator's
  // largest CPU cost (17%). This client resends whole streams itself (the
  // service deduplicates), so nothing is buffered for retries, and a write
  // completes when the transport has taken it (real backpressure).
  'grpc.enable_retries': 0,
  'grpc.per_rpc_retry_buffer_size': 0,
};

/** Opens a client and waits until the channel is connected. */
export async function connectIngest(addr: string, opts: { timeoutMs?: number } = {}): Promise<grpc.Client> {
  const { Ingest } = phonebillV1();
  const client = new Ingest(addr, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  try {
    await new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + (opts.timeoutMs ?? 5000);
      const channel = client.getChannel();
      // A refused connection shows as TRANSIENT_FAILURE at once: say so now
      // rather than retrying until the deadline.
      const watch = (state: grpc.connectivityState) => {
        if (state === grpc.connectivityState.READY) return resolve();
        if (state === grpc.connectivityState.TRANSIENT_FAILURE) return reject(new Error('connection failed'));
        if (Date.now() >= deadline) return reject(new Error('no answer before the deadline'));
        channel.watchConnectivityState(state, deadline, (err) => (err ? reject(new Error('no answer before the deadline')) : watch(channel.getConnectivityState(false))));
      };
      watch(channel.getConnectivityState(true));
    });
  } catch (e) {
    client.close();
    throw new IngestUnreachable(addr, e);
  }
  return client;
}

export function toResponse(r: Record<string, unknown>): IngestResponse {
  return {
    accepted: Number(r.accepted ?? 0),
    duplicates: Number(r.duplicates ?? 0),
    rejected: Number(r.rejected ?? 0),
    rejections: ((r.rejections ?? []) as Rejection[]).map((x) => ({ call_id: x.call_id, field: x.field, reason: x.reason })),
  };
}

export interface SendOptions<T> {
  client: grpc.Client;
  /** RecordCallBatches: each item is a CallBatch ({calls}); RecordCalls: each item is one CallEndEvent. */
  method: IngestMethod;
  source: AsyncIterable<T> | Iterable<T>;
  /** Events in one item. */
  count(item: T): number;
  /** Concurrent streams (default 2). */
  streams?: number;
  /** A stream is closed, and its response awaited, after about this many events (default 100,000). */
  eventsPerStream?: number;
  /** Turns an item into the message bytes (default: the proto's own serializer). Load generators pre-encode. */
  serialize?: (item: T) => Buffer;
  /** Whether onResponse receives the items of the stream (default true; the memory of one stream per worker). */
  keepItems?: boolean;
  onWritten?(events: number): void;
  onResponse?(res: IngestResponse, items: readonly T[]): void;
}

/** Sends every item of `source`; resolves with the totals once every stream is answered. */
export async function sendStreams<T>(o: SendOptions<T>): Promise<SendTotals> {
  const def = (o.client.constructor as grpc.ServiceClientConstructor).service[o.method]!;
  const serialize = o.serialize ?? (def.requestSerialize as (v: T) => Buffer);
  const perStream = o.eventsPerStream ?? 100_000;
  const keep = o.keepItems ?? true;
  const totals: SendTotals = { sent: 0, acknowledged: 0, accepted: 0, duplicates: 0, rejected: 0, streams: 0 };

  let exhausted = false;
  let failure: unknown;
  let pull: () => Promise<T | undefined> | T | undefined;
  if (Symbol.asyncIterator in o.source) {
    const it = (o.source as AsyncIterable<T>)[Symbol.asyncIterator]();
    let chain: Promise<unknown> = Promise.resolve();
    // One pull at a time: workers share the iterator.
    pull = () => {
      const p = chain.then(async () => {
        if (exhausted || failure !== undefined) return undefined;
        const r = await it.next();
        if (r.done) { exhausted = true; return undefined; }
        return r.value;
      });
      chain = p.catch(() => undefined);
      return p;
    };
  } else {
    // Synchronous sources (pre-encoded load) are pulled without a promise per item.
    const it = (o.source as Iterable<T>)[Symbol.iterator]();
    pull = () => {
      if (exhausted || failure !== undefined) return undefined;
      const r = it.next();
      if (r.done) { exhausted = true; return undefined; }
      return r.value;
    };
  }

  async function oneStream(): Promise<boolean> {
    const first = await pull();
    if (first === undefined) return false;
    totals.streams++;
    let resolveRes!: (r: IngestResponse) => void, rejectRes!: (e: unknown) => void;
    const response = new Promise<IngestResponse>((res, rej) => { resolveRes = res; rejectRes = rej; });
    response.catch(() => undefined);
    const call = o.client.makeClientStreamRequest<T, Record<string, unknown>>(
      def.path, serialize, def.responseDeserialize as (b: Buffer) => Record<string, unknown>, new grpc.Metadata(), {},
      (err, value) => (err ? rejectRes(err) : resolveRes(toResponse(value ?? {}))),
    );
    const items: T[] = [];
    let inStream = 0;
    try {
      let item: T | undefined = first;
      while (item !== undefined) {
        if (keep) items.push(item);
        const n = o.count(item);
        inStream += n;
        totals.sent += n;
        const ok = call.write(item);
        o.onWritten?.(n);
        if (!ok) await Promise.race([once(call, 'drain'), response]);
        if (inStream >= perStream) break;
        const next = pull();
        item = next instanceof Promise ? await next : next;
      }
      call.end();
      const res = await response;
      totals.acknowledged += inStream;
      totals.accepted += res.accepted;
      totals.duplicates += res.duplicates;
      totals.rejected += res.rejected;
      o.onResponse?.(res, items);
      return true;
    } catch (e) {
      call.cancel();
      throw e;
    }
  }

  async function worker(): Promise<void> {
    try {
      while (await oneStream()) { /* next stream */ }
    } catch (e) {
      failure ??= e;
    }
  }

  await Promise.all(Array.from({ length: Math.max(1, o.streams ?? 2) }, worker));
  if (failure !== undefined) throw new StreamFailed(totals, totals.sent - totals.acknowledged, failure);
  return totals;
}
