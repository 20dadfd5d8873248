import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CallerState, decide, DECISIONS, isInvalid, type CallerLookup, type DecisionPolicy } from '../domain/decide.ts';

const ACTIVE = '+12125550101';
const BLOCKED = '+12125550102';
const UNKNOWN = '+12125550103';
const CA = '+14165550123';

const table: Record<string, CallerState> = { [ACTIVE]: CallerState.Active, [BLOCKED]: CallerState.Blocked };
const lookup: CallerLookup = (n) => table[n] ?? CallerState.Unknown;
const deny: DecisionPolicy = { unknownSubscriber: 'deny', noState: 'allow' };

type Expect = { allowed: boolean; reason: string; rule: string } | { field: string; reason: RegExp | string };

const cases: [string, string, string, Expect, { policy?: DecisionPolicy; noState?: boolean }?][] = [
  // 911 first: whatever the caller, whatever the state.
  ['911 from a subscriber', ACTIVE, '911', DECISIONS.emergency],
  ['911 from a blocked caller', BLOCKED, '911', DECISIONS.emergency],
  ['911 from an unknown caller', UNKNOWN, '911', DECISIONS.emergency],
  ['911 from a malformed caller', 'garbage', '911', DECISIONS.emergency],
  ['911 from an empty caller', '', '911', DECISIONS.emergency],
  ['911 with no state loaded', BLOCKED, '911', DECISIONS.emergency, { noState: true, policy: { unknownSubscriber: 'deny', noState: 'deny' } }],
  // Then the target's area.
  ['UK target', ACTIVE, '+441632960000', DECISIONS.outOfArea],
  ['Mexican target', ACTIVE, '+525512345678', DECISIONS.outOfArea],
  ['foreign target from a malformed caller (target checked first)', 'garbage', '+441632960000', DECISIONS.outOfArea],
  ['foreign target from a blocked caller', BLOCKED, '+33142685300', DECISIONS.outOfArea],
  ['foreign target with no state', ACTIVE, '+441632960000', DECISIONS.outOfArea, { noState: true }],
  ['empty target', ACTIVE, '', { field: 'target_number', reason: 'is required' }],
  ['national-format target', ACTIVE, '4165550123', { field: 'target_number', reason: 'must be E.164 +1NPANXXXXXX' }],
  ['short +1 target', ACTIVE, '+1416555', { field: 'target_number', reason: 'must be E.164 +1NPANXXXXXX' }],
  ['unassigned area code target', ACTIVE, '+19995550100', { field: 'target_number', reason: 'unassigned area code 999' }],
  ['+0 target', ACTIVE, '+0123456789', { field: 'target_number', reason: /E\.164|NANP/ }],
  ['unknown 3-digit code', ACTIVE, '999', { field: 'target_number', reason: /^not a service code/ }],
  ['malformed target and caller: target named', 'garbage', 'x', { field: 'target_number', reason: 'must be E.164 +1NPANXXXXXX' }],
  // Then the caller's validity.
  ['empty caller', '', CA, { field: 'source_number', reason: 'is required' }],
  ['malformed caller', '212-555-0101', CA, { field: 'source_number', reason: 'must be E.164 +1NPANXXXXXX' }],
  ['service code as caller', '611', CA, { field: 'source_number', reason: 'a service code (611) cannot place calls' }],
  ['foreign caller', '+441632960000', CA, { field: 'source_number', reason: 'not a North American (NANP) number' }],
  ['invalid exchange caller', '+12121111234', CA, { field: 'source_number', reason: 'not a valid number in area code 212 (exchange 111)' }],
  ['malformed caller with no state', 'x', CA, { field: 'source_number', reason: 'must be E.164 +1NPANXXXXXX' }, { noState: true }],
  // Then the caller's state.
  ['subscriber to Canada', ACTIVE, CA, DECISIONS.allowed],
  ['subscriber to toll-free', ACTIVE, '+18005550100', DECISIONS.allowed],
  ['subscriber to 411', ACTIVE, '411', DECISIONS.allowed],
  ['subscriber to 611', ACTIVE, '611', DECISIONS.allowed],
  ['unknown caller, deny policy', UNKNOWN, CA, DECISIONS.unknownDenied],
  ['unknown caller, allow policy', UNKNOWN, CA, DECISIONS.unknownAllowed, { policy: { unknownSubscriber: 'allow', noState: 'allow' } }],
  ['unknown caller to 611 (not exempt: not a subscriber)', UNKNOWN, '611', DECISIONS.unknownDenied],
  ['blocked caller to Canada', BLOCKED, CA, DECISIONS.overdue],
  ['blocked caller to a US number', BLOCKED, '+13125550199', DECISIONS.overdue],
  ['blocked caller to 411', BLOCKED, '411', DECISIONS.overdue],
  ['blocked caller to 611 (customer care, to pay)', BLOCKED, '611', DECISIONS.overdueExempt],
  ['blocked caller to 988 (crisis line)', BLOCKED, '988', DECISIONS.overdueExempt],
  ['blocked caller to +1 number ending 611 (not the service code)', BLOCKED, '+12125550611', DECISIONS.overdue],
  // No state ever loaded: the policy.
  ['no state, allow policy', BLOCKED, CA, DECISIONS.noStateAllowed, { noState: true }],
  ['no state, deny policy', ACTIVE, CA, DECISIONS.noStateDenied, { noState: true, policy: { unknownSubscriber: 'deny', noState: 'deny' } }],
];

describe('decide (CanPlaceCall rules, in order)', () => {
  it.each(cases)('%s', (_name, source, target, expected, opts) => {
    const r = decide(source, target, opts?.noState ? undefined : lookup, opts?.policy ?? deny);
    if ('field' in expected) {
      expect(isInvalid(r)).toBe(true);
      if (!isInvalid(r)) return;
      expect(r.field).toBe(expected.field);
      if (typeof expected.reason === 'string') expect(r.reason).toBe(expected.reason);
      else expect(r.reason).toMatch(expected.reason);
    } else {
      expect(r).toBe(expected); // the very constant: the hot path allocates no decision
    }
  });

  it('the decision constants carry the proto reason and allowed flag', () => {
    expect(DECISIONS.emergency).toEqual({ allowed: true, reason: 'EMERGENCY', rule: 'emergency' });
    expect(DECISIONS.overdue).toEqual({ allowed: false, reason: 'OVERDUE', rule: 'overdue' });
    expect(DECISIONS.overdueExempt).toEqual({ allowed: true, reason: 'ALLOWED', rule: 'overdue_exempt' });
    expect(DECISIONS.unknownDenied).toEqual({ allowed: false, reason: 'UNKNOWN_SUBSCRIBER', rule: 'unknown_subscriber' });
    expect(DECISIONS.outOfArea).toEqual({ allowed: false, reason: 'OUT_OF_AREA', rule: 'out_of_area' });
    expect(DECISIONS.noStateDenied).toEqual({ allowed: false, reason: 'REASON_UNSPECIFIED', rule: 'no_state' });
    expect(Object.isFrozen(DECISIONS.allowed)).toBe(true);
  });

  it('takes a number in the subscriber set as valid (billing validated it); one outside it is parsed', () => {
    const odd = '+19995550100'; // unassigned area code: INVALID_ARGUMENT unless a subscriber
    expect(decide(odd, CA, (n) => (n === odd ? CallerState.Blocked : CallerState.Unknown), deny)).toBe(DECISIONS.overdue);
    expect(decide(odd, CA, () => CallerState.Unknown, deny)).toEqual({ field: 'source_number', reason: 'unassigned area code 999' });
  });

  it('property: 911 is allowed whatever the caller string and state', () => {
    fc.assert(fc.property(fc.string(), fc.constantFrom<CallerState>(0, 1, 2), fc.boolean(), (source, state, noState) => {
      expect(decide(source, '911', noState ? undefined : () => state, { unknownSubscriber: 'deny', noState: 'deny' })).toBe(DECISIONS.emergency);
    }));
  });

  it('property: any input is either a known decision or a refusal naming a field, never a throw', () => {
    const known = new Set(Object.values(DECISIONS));
    const number = fc.oneof(fc.string(), fc.constantFrom(ACTIVE, BLOCKED, UNKNOWN, CA, '611', '988', '911', '411', '+441632960000'),
      fc.stringMatching(/^\+1[2-9]\d{9}$/), fc.stringMatching(/^\+\d{1,16}$/));
    fc.assert(fc.property(number, number, (source, target) => {
      const r = decide(source, target, lookup, deny);
      if (isInvalid(r)) {
        expect(['source_number', 'target_number']).toContain(r.field);
        expect(r.reason.length).toBeGreaterThan(0);
      } else {
        expect(known.has(r)).toBe(true);
      }
    }), { numRuns: 2000 });
  });
});
