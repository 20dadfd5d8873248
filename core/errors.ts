/**
 * Domain errors carry a stable `code` and a `kind`; each protocol has one
 * mapper that turns the kind into its own status (gRPC code, HTTP status).
 * Domain code never throws protocol errors.
 */
export type ErrorKind = 'invalid' | 'not_found' | 'conflict' | 'unavailable' | 'overloaded' | 'unauthenticated' | 'forbidden';

export class DomainError extends Error {
  readonly kind: ErrorKind;
  readonly code: string;
  /** The input field at fault, when there is one. */
  readonly field?: string;

  constructor(kind: ErrorKind, code: string, message: string, opts: { field?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'DomainError';
    this.kind = kind;
    this.code = code;
    if (opts.field !== undefined) this.field = opts.field;
  }
}

export const invalid = (field: string, reason: string, code = 'INVALID_ARGUMENT') =>
  new DomainError('invalid', code, `${field}: ${reason}`, { field });
export const notFound = (what: string, code = 'NOT_FOUND') => new DomainError('not_found', code, `${what} not found`);
export const conflict = (message: string, code = 'CONFLICT') => new DomainError('conflict', code, message);
export const overloaded = (message: string, code = 'OVERLOADED') => new DomainError('overloaded', code, message);
export const unavailable = (message: string, code = 'UNAVAILABLE', cause?: unknown) =>
  new DomainError('unavailable', code, message, { cause });

export const isDomainError = (e: unknown): e is DomainError => e instanceof DomainError;
