/**
 * CanPlaceCall's rules, pure: the caller's state comes in through a lookup
 * so the same function answers from the in-process replica, from a test
 * table, or with no state at all.
 *
 * Order matters and is part of the contract: 911 first (before the caller is
 * even validated: an emergency call is never refused), then the target's
 * area, then the caller's validity, then the caller's state. (A number in
 * the subscriber set counts as valid: billing validated it on creation.)
 */
import { numberKind, parseNumber } from '../../core/numbers/index.ts';

/** CanPlaceCallResponse.Reason, as proto-loader hands enums over (names). */
export type Reason = 'REASON_UNSPECIFIED' | 'ALLOWED' | 'OVERDUE' | 'EMERGENCY' | 'UNKNOWN_SUBSCRIBER' | 'OUT_OF_AREA';

/** Which rule answered: one metric label per rule, bounded. */
export type Rule =
  | 'emergency'
  | 'out_of_area'
  | 'unknown_subscriber'
  | 'overdue'
  /** Blocked caller dialling 611 (customer care, to pay) or 988 (crisis line). */
  | 'overdue_exempt'
  | 'subscriber'
  /** No state ever loaded: ADMISSION_NO_STATE_POLICY answered. */
  | 'no_state';

/**
 * Shaped like CanPlaceCallResponse so the transport hands it to grpc-js as
 * is (the serializer reads only the proto's fields); `rule` is for metrics.
 * Every decision is one of a few frozen constants: the hot path allocates none.
 */
export interface Decision {
  readonly allowed: boolean;
  readonly reason: Reason;
  readonly rule: Rule;
}

export interface InvalidNumber {
  readonly allowed?: undefined;
  readonly field: 'source_number' | 'target_number';
  readonly reason: string;
}

export type DecisionResult = Decision | InvalidNumber;

export const isInvalid = (r: DecisionResult): r is InvalidNumber => r.allowed === undefined;

/** What the replica knows about a caller (small integers: the lookup allocates nothing). */
export const CallerState = Object.freeze({ Unknown: 0, Active: 1, Blocked: 2 } as const);
export type CallerState = (typeof CallerState)[keyof typeof CallerState];

/**
 * Looks up a caller (any string: anything that is not a known number is
 * Unknown). A known subscriber's number is taken as valid without parsing.
 */
export type CallerLookup = (e164: string) => CallerState;

export interface DecisionPolicy {
  unknownSubscriber: 'deny' | 'allow';
  noState: 'allow' | 'deny';
}

const d = (allowed: boolean, reason: Reason, rule: Rule): Decision => Object.freeze({ allowed, reason, rule });

export const DECISIONS = Object.freeze({
  emergency: d(true, 'EMERGENCY', 'emergency'),
  outOfArea: d(false, 'OUT_OF_AREA', 'out_of_area'),
  unknownDenied: d(false, 'UNKNOWN_SUBSCRIBER', 'unknown_subscriber'),
  unknownAllowed: d(true, 'ALLOWED', 'unknown_subscriber'),
  overdue: d(false, 'OVERDUE', 'overdue'),
  overdueExempt: d(true, 'ALLOWED', 'overdue_exempt'),
  allowed: d(true, 'ALLOWED', 'subscriber'),
  // No basis for a reason: the proto's unspecified value says exactly that.
  noStateDenied: d(false, 'REASON_UNSPECIFIED', 'no_state'),
  noStateAllowed: d(true, 'ALLOWED', 'no_state'),
});

/** Service codes a blocked caller may still dial. */
export const OVERDUE_EXEMPT_TARGETS: ReadonlySet<string> = new Set(['611', '988']);

/**
 * A well-formed international E.164 number outside NANP (+44…, +52…): a
 * country code never starts with 0, and +1 is NANP. Anything else that is
 * not a valid NANP number or service code is malformed.
 */
const FOREIGN_E164 = /^\+[2-9]\d{6,14}$/;

/**
 * The decision for one call. `lookup` is undefined while no state was ever
 * loaded; the policy then answers (after 911 and the number checks).
 */
export function decide(source: string, target: string, lookup: CallerLookup | undefined, policy: DecisionPolicy): DecisionResult {
  if (target === '911') return DECISIONS.emergency;

  // The hot path only asks what the target is; the reason is built for a refusal alone.
  const targetKind = numberKind(target);
  if (targetKind === 'invalid') {
    if (FOREIGN_E164.test(target)) return DECISIONS.outOfArea;
    const to = parseNumber(target);
    return { field: 'target_number', reason: to.kind === 'invalid' ? to.reason : 'is not a valid number' };
  }

  // A subscriber's number was validated when the subscriber was created: the
  // lookup comes first and only a caller it does not know is parsed, which
  // keeps the common case to one parse.
  const state = lookup === undefined ? CallerState.Unknown : lookup(source);
  if (state === CallerState.Unknown) {
    const from = parseNumber(source);
    if (from.kind === 'service_code') return { field: 'source_number', reason: `a service code (${source}) cannot place calls` };
    if (from.kind === 'invalid') return { field: 'source_number', reason: from.reason };
    if (lookup === undefined) return policy.noState === 'allow' ? DECISIONS.noStateAllowed : DECISIONS.noStateDenied;
    return policy.unknownSubscriber === 'allow' ? DECISIONS.unknownAllowed : DECISIONS.unknownDenied;
  }
  if (state === CallerState.Active) return DECISIONS.allowed;
  return targetKind === 'service_code' && OVERDUE_EXEMPT_TARGETS.has(target) ? DECISIONS.overdueExempt : DECISIONS.overdue;
}
