/** The one mapper from domain error kinds to gRPC status codes. */
import * as grpc from '@grpc/grpc-js';
import { isDomainError, type ErrorKind } from '../errors.ts';
import type { Logger } from '../log.ts';

const CODES: Record<ErrorKind, grpc.status> = {
  invalid: grpc.status.INVALID_ARGUMENT,
  not_found: grpc.status.NOT_FOUND,
  conflict: grpc.status.ALREADY_EXISTS,
  unavailable: grpc.status.UNAVAILABLE,
  overloaded: grpc.status.RESOURCE_EXHAUSTED,
  unauthenticated: grpc.status.UNAUTHENTICATED,
  forbidden: grpc.status.PERMISSION_DENIED,
};

export function toGrpcError(err: unknown, log?: Logger): Partial<grpc.StatusObject> & { code: grpc.status; details: string } {
  if (isDomainError(err)) return { code: CODES[err.kind], details: err.message };
  log?.error({ err }, 'unexpected error');
  return { code: grpc.status.INTERNAL, details: 'internal error' };
}
