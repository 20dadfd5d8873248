/**
 * Loads proto/phonebill/v1 once with the one shared set of proto-loader
 * options (int64 as strings, enums as names, defaults filled in).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const PROTO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../proto');
export const PROTO_FILE = 'phonebill/v1/phonebill.proto';

export const LOADER_OPTIONS: protoLoader.Options = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
});

let cached: { def: protoLoader.PackageDefinition; pkg: grpc.GrpcObject } | undefined;

export function loadPhonebillProto(): { def: protoLoader.PackageDefinition; pkg: grpc.GrpcObject } {
  if (!cached) {
    const def = protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS);
    cached = { def, pkg: grpc.loadPackageDefinition(def) };
  }
  return cached;
}

type Ctor = grpc.ServiceClientConstructor;
/** The phonebill.v1 services: `.service` for servers, `new X(addr, creds)` for clients. */
export function phonebillV1(): { Ingest: Ctor; Admission: Ctor } {
  const v1 = ((loadPhonebillProto().pkg.phonebill as grpc.GrpcObject).v1) as grpc.GrpcObject;
  return { Ingest: v1.Ingest as Ctor, Admission: v1.Admission as Ctor };
}

/** google.protobuf.Timestamp as proto-loader hands it over (seconds as a string). */
export interface Timestamp { seconds: string | number; nanos: number }

export const timestampToMillis = (t: Timestamp): number => Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6);
export const millisToTimestamp = (ms: number): Timestamp => {
  const seconds = Math.floor(ms / 1000);
  return { seconds: String(seconds), nanos: (ms - seconds * 1000) * 1e6 };
};
