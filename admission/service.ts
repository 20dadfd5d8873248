/**
 * The admission use case: one synchronous decision per call, from the
 * replica the sync keeps current. Nothing here awaits; a call is answered
 * in microseconds whatever state Redis is in.
 */
import type { Clock } from '../core/clock.ts';
import type { Logger } from '../core/log.ts';
import { warmUpNumbers } from '../core/numbers/index.ts';
import { decide, isInvalid, type DecisionPolicy, type DecisionResult } from './domain/decide.ts';
import type { AdmissionMetrics } from './metrics.ts';
import type { ReplicaSync } from './replica/sync.ts';
import { throttled } from './throttle.ts';

export interface AdmissionService {
  canPlaceCall(source: string, target: string): DecisionResult;
  readonly policy: Readonly<DecisionPolicy>;
}

export interface AdmissionDeps {
  sync: Pick<ReplicaSync, 'current'>;
  policy: DecisionPolicy;
  metrics: AdmissionMetrics;
  log: Logger;
  clock: Clock;
}

export function createAdmission({ sync, policy, metrics, log, clock }: AdmissionDeps): AdmissionService {
  warmUpNumbers();
  const frozen = Object.freeze({ ...policy });
  const loud = throttled(clock, 10_000);
  return {
    policy: frozen,
    canPlaceCall(source, target) {
      const r = decide(source, target, sync.current?.lookup, frozen);
      if (isInvalid(r)) {
        metrics.invalid(r.field);
        return r;
      }
      metrics.decided(r);
      if (r.rule === 'no_state') {
        loud((suppressed) => log.error({ policy: frozen.noState, answeredWithoutState: suppressed + 1 },
          `admission: NO STATE LOADED from Redis; calls are ${frozen.noState === 'allow' ? 'ALLOWED' : 'DENIED'} by ADMISSION_NO_STATE_POLICY until billing publishes the state`));
      }
      return r;
    },
  };
}
