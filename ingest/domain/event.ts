/**
 * One call-end event from the switch, checked against every ingest rule.
 * Pure: the clock reading and the limits are passed in, so a test can ask
 * "as of" any instant.
 */
import { classifyCall, type CallClass, type Country } from '../../core/numbers/index.ts';
import { timestampToMillis, type Timestamp } from '../../core/grpc/proto.ts';

/** CallEndEvent as @grpc/proto-loader hands it over (absent message fields are null). */
export interface CallEndEvent {
  call_id: string;
  source_number: string;
  target_number: string;
  start: Timestamp | null | undefined;
  end: Timestamp | null | undefined;
}

export interface Limits {
  /** Longest call accepted, end - start. */
  maxCallSeconds: number;
  /** How far ahead of the clock a start or end may lie (switch clock skew). */
  maxFutureSeconds: number;
}

export const MAX_CALL_ID_LENGTH = 128;

/** The proto field a rejection names. */
export type EventField = 'call_id' | 'source_number' | 'target_number' | 'start' | 'end';

export interface CallRow {
  callId: string;
  source: string;
  target: string;
  startMs: number;
  endMs: number;
  durationMs: number;
  sourceCountry: Country;
  targetCountry: Country;
  callClass: CallClass;
}

/** What the response echoes back for one refused event. */
export interface Rejection {
  call_id: string;
  field: EventField;
  reason: string;
}

/** The event as it came, in text, for rejected_calls: nothing the switch sent is dropped. */
export interface RawEvent {
  call_id: string;
  source_number: string;
  target_number: string;
  start: string;
  end: string;
}

export type Validation =
  | { ok: true; row: CallRow }
  | { ok: false; rejection: Rejection; raw: RawEvent };

const NANOS_MAX = 999_999_999;
// DateTime64(3) and toYYYYMM partitions handle anything from 1970 on; earlier
// instants are no call a switch can report and would only make odd partitions.
const EPOCH_REASON = 'must not be before 1970-01-01T00:00:00Z';

/**
 * An instant in epoch milliseconds, or NaN when the timestamp is unusable
 * (instantProblem then says why): no object per timestamp on the hot path.
 */
function instantMs(t: Timestamp | null | undefined): number {
  if (t === null || t === undefined) return NaN;
  const nanos = t.nanos ?? 0;
  if (!Number.isInteger(nanos) || nanos < 0 || nanos > NANOS_MAX) return NaN;
  const ms = timestampToMillis(t);
  return Number.isFinite(ms) && ms >= 0 ? ms : NaN;
}

function instantProblem(t: Timestamp | null | undefined): string {
  if (t === null || t === undefined) return 'is required';
  const nanos = t.nanos ?? 0;
  if (!Number.isInteger(nanos) || nanos < 0 || nanos > NANOS_MAX) return `nanos must be between 0 and ${NANOS_MAX}, got ${nanos}`;
  const ms = timestampToMillis(t);
  if (!Number.isFinite(ms)) return `seconds is not an integer: ${JSON.stringify(t.seconds)}`;
  return EPOCH_REASON;
}

function reject(ev: CallEndEvent, field: EventField, reason: string): Validation {
  return { ok: false, rejection: { call_id: ev.call_id ?? '', field, reason }, raw: rawEvent(ev) };
}

/** Applies the rules in field order; the first failure is the one reported. */
export function validateEvent(ev: CallEndEvent, nowMs: number, limits: Limits): Validation {
  const callId = ev.call_id ?? '';
  if (callId.length === 0) return reject(ev, 'call_id', 'is required');
  if (callId.length > MAX_CALL_ID_LENGTH) return reject(ev, 'call_id', `must be at most ${MAX_CALL_ID_LENGTH} characters, got ${callId.length}`);

  const source = ev.source_number ?? '';
  const target = ev.target_number ?? '';
  const cls = classifyCall(source, target);
  if (!cls.ok) return reject(ev, cls.field, cls.reason);

  const startMs = instantMs(ev.start);
  if (Number.isNaN(startMs)) return reject(ev, 'start', instantProblem(ev.start));
  const endMs = instantMs(ev.end);
  if (Number.isNaN(endMs)) return reject(ev, 'end', instantProblem(ev.end));

  const horizon = nowMs + limits.maxFutureSeconds * 1000;
  if (startMs > horizon) return reject(ev, 'start', `is ${futureSeconds(startMs, nowMs)} s in the future; at most ${limits.maxFutureSeconds} s is allowed`);
  if (endMs < startMs) return reject(ev, 'end', 'must not be before start');
  if (endMs > horizon) return reject(ev, 'end', `is ${futureSeconds(endMs, nowMs)} s in the future; at most ${limits.maxFutureSeconds} s is allowed`);
  const durationMs = endMs - startMs;
  if (durationMs > limits.maxCallSeconds * 1000) {
    return reject(ev, 'end', `call lasts ${Math.ceil(durationMs / 1000)} s; at most ${limits.maxCallSeconds} s is allowed`);
  }

  return {
    ok: true,
    row: {
      callId,
      source,
      target,
      startMs,
      endMs,
      durationMs,
      sourceCountry: cls.sourceCountry,
      targetCountry: cls.targetCountry,
      callClass: cls.callClass,
    },
  };
}

const futureSeconds = (ms: number, nowMs: number) => Math.ceil((ms - nowMs) / 1000);

/** The raw event in text: RFC 3339 with the full nanoseconds, or the raw fields when that is impossible. */
export function rawEvent(ev: CallEndEvent): RawEvent {
  return {
    call_id: ev.call_id ?? '',
    source_number: ev.source_number ?? '',
    target_number: ev.target_number ?? '',
    start: rawTimestamp(ev.start),
    end: rawTimestamp(ev.end),
  };
}

export function rawTimestamp(t: Timestamp | null | undefined): string {
  if (t === null || t === undefined) return '';
  const seconds = Number(t.seconds);
  const nanos = t.nanos ?? 0;
  const d = new Date(seconds * 1000);
  if (!Number.isInteger(seconds) || !Number.isInteger(nanos) || nanos < 0 || nanos > NANOS_MAX || Number.isNaN(d.getTime())) {
    return `seconds=${String(t.seconds)} nanos=${String(t.nanos)}`;
  }
  return `${d.toISOString().slice(0, 19)}.${String(nanos).padStart(9, '0')}Z`;
}
