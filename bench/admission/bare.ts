/**
 * The baseline: a bare grpc-js server with the same proto and loader
 * options, answering CanPlaceCall from a Map of the same population
 * (caller → answer). No validation, no rules, no metrics, no health or
 * reflection: the cost of grpc-js itself.
 *
 *   node --import tsx bench/admission/bare.ts SUBSCRIBERS
 * Prints {"port":N} once listening; exits on SIGTERM.
 */
import * as grpc from '@grpc/grpc-js';
import { bind } from '../../core/grpc/server.ts';
import { phonebillV1 } from '../../core/grpc/proto.ts';
import { isBlocked, subscriberNumber } from './dataset.ts';

const subscribers = Number(process.argv[2]);
const ALLOWED = { allowed: true, reason: 'ALLOWED' };
const OVERDUE = { allowed: false, reason: 'OVERDUE' };
const UNKNOWN = { allowed: false, reason: 'UNKNOWN_SUBSCRIBER' };
const answers = new Map<string, typeof ALLOWED>();
for (let i = 0; i < subscribers; i++) answers.set(subscriberNumber(i), isBlocked(i) ? OVERDUE : ALLOWED);

const server = new grpc.Server();
server.addService(phonebillV1().Admission.service, {
  CanPlaceCall(call: grpc.ServerUnaryCall<{ source_number: string }, typeof ALLOWED>, callback: grpc.sendUnaryData<typeof ALLOWED>) {
    callback(null, answers.get(call.request.source_number) ?? UNKNOWN);
  },
});
const port = await bind(server, '127.0.0.1', 0);
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
