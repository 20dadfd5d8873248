/** What every phonebill gRPC server has: health, reflection, bind on a port. */
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import { ReflectionService } from '@grpc/reflection';
import { loadPhonebillProto } from './proto.ts';

export interface StandardServer {
  server: grpc.Server;
  health: HealthImplementation;
  setServing(service: string, status: ServingStatus): void;
}

export function createStandardServer(options: grpc.ServerOptions = {}): StandardServer {
  const server = new grpc.Server(options);
  const health = new HealthImplementation({ '': 'NOT_SERVING' });
  health.addToServer(server);
  new ReflectionService(loadPhonebillProto().def).addToServer(server);
  return {
    server,
    health,
    setServing(service, status) {
      health.setStatus(service, status);
      health.setStatus('', status);
    },
  };
}

/** Binds insecure (loopback / behind the operator's mesh) and resolves the real port (port 0 in tests). */
export function bind(server: grpc.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
}
