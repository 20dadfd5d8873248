/** Billing's Redis adapters: the connection and the admission state publisher (the only billing files importing ioredis). */
export { createRedisClient, isReady, type Redis, type RedisClientOptions } from './client.ts';
export { createAdmissionPublisher, type AdmissionPublisher, type StateSet } from './publisher.ts';
