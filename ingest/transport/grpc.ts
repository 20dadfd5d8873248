/**
 * phonebill.v1.Ingest over gRPC: decode, hand events to the service, answer
 * once. Streams are paused (HTTP/2 flow control then stops the client) while
 * the service is past its memory bound.
 */
import * as grpc from '@grpc/grpc-js';
import { toGrpcError } from '../../core/grpc/errors.ts';
import { phonebillV1 } from '../../core/grpc/proto.ts';
import type { Logger } from '../../core/log.ts';
import type { CallEndEvent } from '../domain/event.ts';
import { decodeCallBatch, decodeCallEndEvent } from './decode.ts';
import type { IngestRequest, IngestService, RecordResult } from '../service.ts';

interface CallBatch { calls: CallEndEvent[] | null | undefined }

interface RecordCallsResponse {
  accepted: string;
  duplicates: string;
  rejected: string;
  rejections: { call_id: string; field: string; reason: string }[];
}

/** Batches of many calls per message; each stream buffers at most a few messages (see README). */
export const MAX_RECEIVE_MESSAGE_BYTES = 64 * 1024 * 1024;

export const GRPC_SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.max_receive_message_length': MAX_RECEIVE_MESSAGE_BYTES,
};

const toResponse = (r: RecordResult): RecordCallsResponse => ({
  accepted: String(r.accepted),
  duplicates: String(r.duplicates),
  rejected: String(r.rejected),
  rejections: r.rejections,
});

type Stream = grpc.ServerReadableStream<unknown, RecordCallsResponse>;

interface OpenStream {
  call: Stream;
  req: IngestRequest;
  /** The client half-closed: the request is complete. */
  clientEnded: boolean;
  /** Ended by the server at shutdown before the client finished: answered UNAVAILABLE. */
  cut: boolean;
}

export interface IngestGrpcHandlers {
  implementation: grpc.UntypedServiceImplementation;
  /** Streams still open (their request not answered yet). */
  openStreams(): number;
  /** Resolves when no stream is open. */
  idle(): Promise<void>;
  /**
   * Shutdown: stops reading every open stream and ends its request; once
   * what it sent is durable it is answered UNAVAILABLE with the counts in
   * the message, so the switch resends (duplicates are dropped).
   */
  cutOpenStreams(): void;
}

export function createIngestGrpcHandlers(service: IngestService, log: Logger): IngestGrpcHandlers {
  const open = new Set<OpenStream>();
  const idleWaiters: (() => void)[] = [];
  let paused = false;

  service.onBackpressure((over) => {
    paused = over;
    for (const s of open) if (!s.clientEnded && !s.cut) (over ? s.call.pause() : s.call.resume());
    service.metrics.pausedStreams.set(over ? open.size : 0);
  });

  const forget = (s: OpenStream) => {
    open.delete(s);
    if (open.size === 0) for (const w of idleWaiters.splice(0)) w();
  };

  function stream(call: Stream, callback: grpc.sendUnaryData<RecordCallsResponse>, eventsOf: (msg: unknown) => readonly CallEndEvent[]): void {
    limitReadAhead(call);
    const req = service.begin();
    const s: OpenStream = { call, req, clientEnded: false, cut: false };
    open.add(s);
    let answered = false;
    const answer = (err: grpc.ServerErrorResponse | Partial<grpc.StatusObject> | null, res?: RecordCallsResponse) => {
      if (answered) return;
      answered = true;
      forget(s);
      callback(err as grpc.ServerErrorResponse | null, res);
    };
    const abandon = () => {
      // Cancelled or broken by the client: nobody to answer. What was queued is still written.
      answered = true;
      forget(s);
    };

    call.on('data', (msg: unknown) => {
      if (answered || s.cut) return;
      try {
        req.add(eventsOf(msg));
      } catch (err) {
        call.pause();
        answer(toGrpcError(err, log));
      }
    });
    call.on('end', () => {
      s.clientEnded = true;
      if (!s.cut) req.end();
    });
    call.on('cancelled', abandon);
    call.on('error', (err) => {
      log.debug({ err }, 'ingest stream error');
      abandon();
    });
    if (paused) call.pause();

    req.done.then(
      (r) => {
        if (!s.cut) return answer(null, toResponse(r));
        answer({
          code: grpc.status.UNAVAILABLE,
          details: `ingest shut down before the stream ended: the ${r.accepted + r.duplicates + r.rejected} calls it received are durable `
            + `(accepted ${r.accepted}, duplicates ${r.duplicates}, rejected ${r.rejected}); resend the stream`,
        });
      },
      (err) => answer(toGrpcError(err, log)),
    );
  }

  const implementation: grpc.UntypedServiceImplementation = {
    RecordCalls: (call: Stream, callback: grpc.sendUnaryData<RecordCallsResponse>) =>
      stream(call, callback, (msg) => [msg as CallEndEvent]),
    RecordCallBatches: (call: Stream, callback: grpc.sendUnaryData<RecordCallsResponse>) =>
      stream(call, callback, (msg) => (msg as CallBatch).calls ?? []),
    RecordCall: (call: grpc.ServerUnaryCall<CallEndEvent, RecordCallsResponse>, callback: grpc.sendUnaryData<RecordCallsResponse>) => {
      let answered = false;
      service.recordOne(call.request).then(
        (r) => { if (!answered) { answered = true; callback(null, toResponse(r)); } },
        (err) => { if (!answered) { answered = true; callback(toGrpcError(err, log) as grpc.ServerErrorResponse); } },
      );
    },
  };

  return {
    implementation,
    openStreams: () => open.size,
    idle: () => (open.size === 0 ? Promise.resolve() : new Promise((res) => idleWaiters.push(res))),
    cutOpenStreams() {
      for (const s of open) {
        if (s.clientEnded || s.cut) continue;
        s.cut = true;
        s.call.pause();
        s.req.end();
      }
    },
  };
}

/**
 * A paused Readable still pulls (and grpc-js decodes) messages until its
 * buffer holds highWaterMark of them: 16 by default for object streams, i.e.
 * 16 CallBatch messages per paused stream, which at 1,000 calls a message is
 * ~10 MB of decoded objects each, outside the pending-bytes bound. Two keep
 * the pipeline full while bounding that read-ahead.
 */
const READ_AHEAD_MESSAGES = 2;

function limitReadAhead(call: Stream): void {
  const state = (call as unknown as { _readableState?: { highWaterMark: number } })._readableState;
  if (state && state.highWaterMark > READ_AHEAD_MESSAGES) state.highWaterMark = READ_AHEAD_MESSAGES;
}

/** phonebill.v1.Ingest with the hand-written request decoders (see decode.ts). */
export function ingestServiceDefinition(): grpc.ServiceDefinition {
  const base = phonebillV1().Ingest.service;
  const with_ = (name: string, requestDeserialize: (b: Buffer) => unknown) => ({ ...base[name]!, requestDeserialize });
  return {
    ...base,
    RecordCalls: with_('RecordCalls', decodeCallEndEvent),
    RecordCall: with_('RecordCall', decodeCallEndEvent),
    RecordCallBatches: with_('RecordCallBatches', decodeCallBatch),
  } as grpc.ServiceDefinition;
}
