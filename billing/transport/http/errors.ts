/**
 * The billing API's one error catalogue: every error leaves as
 * `{ "error": { "code", "message", "field"? } }` with the status below.
 * DomainErrors map by kind (a code may override); fastify's own client errors
 * keep their status under a stable code; anything else is a 500 whose details
 * go to the log only — never a stack trace or SQL to the caller.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isDomainError, type ErrorKind } from '../../../core/errors.ts';

export const STATUS_BY_KIND: Record<ErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  overloaded: 429,
  unavailable: 503,
};

/** Codes whose status differs from their kind's. */
export const STATUS_BY_CODE: Record<string, number> = {};

/** fastify's client errors, renamed to this API's codes. */
const FASTIFY_CODES: Record<string, { status: number; code: string; message?: string }> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', message: 'send JSON with Content-Type: application/json' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'INVALID_JSON', message: 'the JSON body is empty' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'INVALID_JSON', message: 'the body is not valid JSON' },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'PAYLOAD_TOO_LARGE', message: 'the body is too large' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'INVALID_CONTENT_LENGTH', message: 'Content-Length does not match the body' },
};

export interface ErrorBody { error: { code: string; message: string; field?: string } }

export const errorBody = (code: string, message: string, field?: string): ErrorBody =>
  ({ error: field === undefined ? { code, message } : { code, message, field } });

interface AjvError { keyword: string; instancePath: string; message?: string; params: Record<string, unknown> }

/** Names the offending field of a JSON-schema failure and says why, in this API's words. */
export function describeValidation(errors: AjvError[], context: string | undefined): { field: string; message: string } {
  const e = errors[0]!;
  const path = e.instancePath.split('/').filter(Boolean).join('.');
  const join = (leaf: string) => (path ? `${path}.${leaf}` : leaf);
  switch (e.keyword) {
    case 'required': return { field: join(String(e.params.missingProperty)), message: 'is required' };
    case 'additionalProperties': return { field: join(String(e.params.additionalProperty)), message: 'is not a known field' };
    case 'format': {
      const f = String(e.params.format);
      const what: Record<string, string> = { uuid: 'must be a UUID', 'date-time': 'must be an RFC 3339 instant such as 2024-03-01T00:00:00Z', date: 'must be a date YYYY-MM-DD' };
      return { field: path || context || 'body', message: what[f] ?? `must match format ${f}` };
    }
    default: return { field: path || context || 'body', message: e.message ?? 'is invalid' };
  }
}

export function sendError(reply: FastifyReply, status: number, body: ErrorBody): FastifyReply {
  if (status === 401) reply.header('www-authenticate', `Bearer realm="phonebill", error="invalid_token"`);
  return reply.code(status).type('application/json; charset=utf-8').send(body);
}

export function errorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (isDomainError(err)) {
    const status = STATUS_BY_CODE[err.code] ?? STATUS_BY_KIND[err.kind] ?? 500;
    if (status >= 500) req.log.warn({ err: err.cause ?? err, code: err.code }, err.message);
    return sendError(reply, status, errorBody(err.code, err.message, err.field));
  }
  if (err.validation) {
    const { field, message } = describeValidation(err.validation as unknown as AjvError[], err.validationContext);
    return sendError(reply, 400, errorBody('INVALID_ARGUMENT', `${field}: ${message}`, field));
  }
  const known = err.code ? FASTIFY_CODES[err.code] : undefined;
  if (known) return sendError(reply, known.status, errorBody(known.code, known.message ?? err.message));
  // Other fastify client errors (bad URL, …): their own message is about the request, safe to show.
  if (err.code?.startsWith('FST_') && err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
    return sendError(reply, err.statusCode, errorBody('BAD_REQUEST', err.message));
  }
  req.log.error({ err }, 'unhandled error');
  return sendError(reply, 500, errorBody('INTERNAL', 'internal error'));
}
