/**
 * phonebill.v1.Admission over gRPC: take the decoded request, decide, answer.
 * The decision time recorded is exactly that span (request decoded →
 * response handed to grpc-js); serialization and I/O are grpc-js's.
 */
import type * as grpc from '@grpc/grpc-js';
import { invalid } from '../../core/errors.ts';
import { toGrpcError } from '../../core/grpc/errors.ts';
import { phonebillV1 } from '../../core/grpc/proto.ts';
import type { Logger } from '../../core/log.ts';
import { isInvalid, type Decision } from '../domain/decide.ts';
import type { AdmissionMetrics } from '../metrics.ts';
import type { AdmissionService } from '../service.ts';

export const ADMISSION_SERVICE_NAME = 'phonebill.v1.Admission';

interface CanPlaceCallRequest { source_number: string; target_number: string }

export const admissionServiceDefinition = (): grpc.ServiceDefinition => phonebillV1().Admission.service;

export function createAdmissionGrpcHandlers(service: AdmissionService, metrics: AdmissionMetrics, log: Logger): grpc.UntypedServiceImplementation {
  const timing = metrics.decisionTime;
  return {
    CanPlaceCall(call: grpc.ServerUnaryCall<CanPlaceCallRequest, Decision>, callback: grpc.sendUnaryData<Decision>) {
      const t0 = performance.now();
      const req = call.request;
      const r = service.canPlaceCall(req.source_number, req.target_number);
      if (isInvalid(r)) {
        const err = toGrpcError(invalid(r.field, r.reason), log);
        const t1 = performance.now();
        callback(err);
        timing.observeMs(t1 - t0);
        return;
      }
      const t1 = performance.now();
      // The Decision constant is the response: proto-loader's serializer reads allowed and reason only.
      callback(null, r);
      timing.observeMs(t1 - t0);
    },
  };
}
