/**
 * North American numbers: the interface every service uses. Implementation
 * in ./nanp.ts (table-driven, precomputed per NPA from libphonenumber-js).
 */
export type { NumberKind, Country, CallClass, ParsedNumber, CallClassification, CallClassificationResult } from './nanp.ts';
export { parseNumber, numberKind, classifyCall, warmUpNumbers, SERVICE_CODES, TOLL_FREE_NPAS } from './nanp.ts';
