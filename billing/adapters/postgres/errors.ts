/**
 * PostgreSQL failures a caller can act on become DomainErrors here, so no
 * layer above the adapters sees a pg error (or its SQL text).
 */
import { DomainError } from '../../../core/errors.ts';

// Connection refused/reset, admin shutdown, cannot connect now, connection exceptions (class 08).
const UNAVAILABLE_NODE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EPIPE']);
const UNAVAILABLE_SQLSTATE = new Set(['57P01', '57P02', '57P03', '53300']);

export function isUnavailable(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  if (typeof code !== 'string') return /Connection terminated|timeout exceeded when trying to connect/i.test(String((e as Error)?.message));
  return UNAVAILABLE_NODE.has(code) || UNAVAILABLE_SQLSTATE.has(code) || code.startsWith('08');
}

/** Rethrows e as an 'unavailable' DomainError when the database cannot be reached, else unchanged. */
export function mapPgError(e: unknown): never {
  if (isUnavailable(e)) throw new DomainError('unavailable', 'DATABASE_UNAVAILABLE', 'the database is unavailable', { cause: e });
  throw e;
}

export const isUniqueViolation = (e: unknown, constraint?: string) =>
  (e as { code?: string })?.code === '23505' && (constraint === undefined || (e as { constraint?: string }).constraint === constraint);
