/** Subscribers: validation rules, the create/read service, and the CSV bulk import. */
export { validateSubscriber, defaultSubscriberRules, rulesFromTariff, type SubscriberInput, type SubscriberRules, type FieldProblem, type SubscriberField } from './validate.ts';
export { createSubscriberService, type SubscriberService, type SubscriberServiceOptions } from './service.ts';
export { importSubscribersCsv, formatImportSummary, CSV_COLUMNS, type ImportSummary, type ImportProblem, type ImportOptions } from './import.ts';
