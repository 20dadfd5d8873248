/**
 * North American Numbering Plan: parsing and call classification on the
 * ingest hot path. Validity, country and type follow libphonenumber-js/max
 * exactly, but are read from a digit trie built once on first use
 * (nanp-table.ts), so a lookup costs a few array reads instead of
 * libphonenumber's ~50 µs.
 */
import { buildNanpTable, type NanpTable, type Outcome } from './nanp-table.ts';

/** 'US' (territories PR, VI, GU, MP, AS included), 'CA', or another NANP country's ISO code. */
export type Country = string;

export type CallClass = 'domestic' | 'cross_border' | 'nanp_international' | 'premium' | 'toll_free' | 'service_code';

export type ParsedNumber =
  | {
      kind: 'nanp';
      e164: string;
      npa: string;
      country: Country;
      /** libphonenumber's region before territories are folded into 'US', e.g. 'PR'. */
      region: string;
      tollFree: boolean;
      premium: boolean;
    }
  | { kind: 'service_code'; code: string }
  | { kind: 'invalid'; reason: string };

export interface CallClassification {
  sourceCountry: Country;
  /** '' for service codes. */
  targetCountry: Country;
  callClass: CallClass;
}

export type CallClassificationResult =
  | ({ ok: true } & CallClassification)
  | { ok: false; field: 'source_number' | 'target_number'; reason: string };

/** N11 codes plus 988 (suicide and crisis line): dialled bare, never with +1. */
export const SERVICE_CODES: ReadonlySet<string> = new Set(['211', '311', '411', '511', '611', '711', '811', '911', '988']);

export const TOLL_FREE_NPAS: ReadonlySet<string> = new Set(['800', '833', '844', '855', '866', '877', '888']);

const E164_FORM = 'must be E.164 +1NPANXXXXXX';

let table: NanpTable | undefined;

/**
 * Builds the lookup table now (≈0.1–0.25 s) instead of on the first number;
 * services call it at start-up so the first request does not pay for it.
 */
export function warmUpNumbers(): NanpTable['stats'] {
  table ??= buildNanpTable();
  return table.stats;
}

// Outcome id (>= 0) for a well-formed +1 number, or one of these codes.
const MALFORMED = -1;
const NOT_NANP = -2;
const EMPTY = -3;

/** The hot path: a length check, then at most 10 array reads. */
function lookup(s: string): number {
  if (s.length !== 12 || s.charCodeAt(0) !== 43 /* + */ || s.charCodeAt(1) !== 49 /* 1 */) {
    if (s.length === 0) return EMPTY;
    if (s.charCodeAt(0) === 43 && s.length > 1 && s.charCodeAt(1) !== 49 && /^\+\d+$/.test(s)) return NOT_NANP;
    return MALFORMED;
  }
  const t = (table ??= buildNanpTable()).trie;
  let cell = 0;
  for (let i = 2; i < 12; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return MALFORMED;
    if (cell >= 0) cell = t[cell * 10 + d];
  }
  return ~cell;
}

function invalidReason(code: number, s: string): string {
  switch (code) {
    case EMPTY:
      return 'is required';
    case NOT_NANP:
      return 'not a North American (NANP) number';
    case MALFORMED:
      if (/^\d{3}$/.test(s)) return `not a service code (${[...SERVICE_CODES].join(', ')}); numbers ${E164_FORM}`;
      return E164_FORM;
  }
  const npa = s.slice(2, 5);
  if (npa[0] === '0' || npa[0] === '1') return `invalid area code ${npa}: an area code cannot start with 0 or 1`;
  if (!table!.npaAssigned[Number(npa)]) return `unassigned area code ${npa}`;
  return `not a valid number in area code ${npa} (exchange ${s.slice(5, 8)})`;
}

function outcomeOf(code: number): Outcome | undefined {
  if (code < 0) return undefined;
  const o = table!.outcomes[code];
  return o.valid ? o : undefined;
}

/** What parseNumber would say a string is, without building its answer: for hot paths (admission). */
export type NumberKind = 'nanp' | 'service_code' | 'invalid';

export function numberKind(s: string): NumberKind {
  if (s.length === 3 && SERVICE_CODES.has(s)) return 'service_code';
  return outcomeOf(lookup(s)) ? 'nanp' : 'invalid';
}

/** The pay-per-call area code. */
export const PREMIUM_NPA = '900';

export function parseNumber(s: string): ParsedNumber {
  if (s.length === 3 && SERVICE_CODES.has(s)) return { kind: 'service_code', code: s };
  const code = lookup(s);
  const o = outcomeOf(code);
  if (!o) return { kind: 'invalid', reason: invalidReason(code, s) };
  const npa = s.slice(2, 5);
  // Toll-free and pay-per-call are decided by the area code, as the tariff
  // defines them (issue 3: 8xx toll-free NPAs, 900 premium), not by
  // libphonenumber's per-exchange types, which would also call BS 242-300 and
  // TT 868-800 toll-free and BB/KY 976 premium: those are ordinary numbers of
  // their countries and bill as NANP international.
  return {
    kind: 'nanp',
    e164: s,
    npa,
    country: o.country,
    region: o.region,
    tollFree: TOLL_FREE_NPAS.has(npa),
    premium: npa === PREMIUM_NPA,
  };
}

function geographicClass(source: Country, target: Country): CallClass {
  if (source === target) return 'domestic';
  if ((source === 'US' && target === 'CA') || (source === 'CA' && target === 'US')) return 'cross_border';
  return 'nanp_international';
}

/**
 * Classifies one call for rating. The source must be a subscriber line: a
 * valid geographic NANP number, never toll-free, premium or a service code.
 */
export function classifyCall(source: string, target: string): CallClassificationResult {
  if (source.length === 3 && SERVICE_CODES.has(source)) {
    return { ok: false, field: 'source_number', reason: `a service code (${source}) cannot place calls` };
  }
  const sourceCode = lookup(source);
  const from = outcomeOf(sourceCode);
  if (!from) return { ok: false, field: 'source_number', reason: invalidReason(sourceCode, source) };
  const sourceNpa = source.slice(2, 5);
  if (TOLL_FREE_NPAS.has(sourceNpa)) return { ok: false, field: 'source_number', reason: 'a toll-free number cannot place calls' };
  if (sourceNpa === PREMIUM_NPA) return { ok: false, field: 'source_number', reason: 'a premium-rate number cannot place calls' };

  if (target.length === 3 && SERVICE_CODES.has(target)) {
    return { ok: true, sourceCountry: from.country, targetCountry: '', callClass: 'service_code' };
  }
  const targetCode = lookup(target);
  const to = outcomeOf(targetCode);
  if (!to) return { ok: false, field: 'target_number', reason: invalidReason(targetCode, target) };
  const targetNpa = target.slice(2, 5);
  const callClass: CallClass = TOLL_FREE_NPAS.has(targetNpa) ? 'toll_free' : targetNpa === PREMIUM_NPA ? 'premium' : geographicClass(from.country, to.country);
  return { ok: true, sourceCountry: from.country, targetCountry: to.country, callClass };
}
