/** Overdue state: rules (pure), the evaluate-and-publish service, and its wiring. */
export { billStatus, blockingDebtCents, blocksService, premiumCentsOf, effectiveAsOf, type BillStatus, type BillState, type ChargeLine } from './domain.ts';
export { createOverdueService, PUBLISH_WAIT_MS, type OverdueService, type OverdueServiceDeps, type OverdueConfig, type EvaluationSummary, type WatchdogOutcome } from './service.ts';
export { startOverdue, publishingSubscriberRepository, type RunningOverdue } from './wiring.ts';
