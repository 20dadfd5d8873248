/** The admission service's public surface. */
export { startAdmission, type RunningAdmission, type StartAdmissionOptions, type AdmissionConfig } from './server.ts';
export { createAdmission, type AdmissionService, type AdmissionDeps } from './service.ts';
export {
  decide, isInvalid, DECISIONS, OVERDUE_EXEMPT_TARGETS, CallerState,
  type Decision, type DecisionResult, type InvalidNumber, type DecisionPolicy, type Reason, type Rule, type CallerLookup,
} from './domain/decide.ts';
export { NumberTable, NumberTableBuilder, numberKey, SUBSCRIBER, BLOCKED, type Flag } from './replica/number-table.ts';
export { Replica, parseChange, type Change } from './replica/replica.ts';
export { startReplicaSync, type ReplicaSync, type ReplicaStatus, type StateSource } from './replica/sync.ts';
export { createRedisStateSource } from './adapters/redis-state.ts';
export { createAdmissionMetrics, DECISION_BUCKETS_US, type AdmissionMetrics } from './metrics.ts';
export { ADMISSION_SERVICE_NAME } from './transport/grpc.ts';
export type { HealthBody } from './http.ts';
