/** The ingest service's public surface. */
export { startIngest, INGEST_SERVICE_NAME, type RunningIngest, type StartIngestOptions } from './server.ts';
export { createIngest, MAX_ECHOED_REJECTIONS, type IngestService, type IngestRequest, type IngestDeps, type IngestConfig, type RecordResult } from './service.ts';
export { validateEvent, rawEvent, MAX_CALL_ID_LENGTH, type CallEndEvent, type CallRow, type Rejection, type Limits, type EventField } from './domain/event.ts';
export { createIngestMetrics, type IngestMetrics } from './metrics.ts';
export { createIngestHttpHandler } from './http.ts';
