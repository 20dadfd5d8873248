/** Listens: the only file that opens the billing API's port. */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../../core/config.ts';
import { verifierFromConfig } from '../../auth/index.ts';
import { buildBillingApp, type BillingAppOptions } from './app.ts';

export interface BillingApi {
  app: FastifyInstance;
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  /** Stops accepting, lets requests in flight finish. */
  close(): Promise<void>;
}

export async function startBillingApi(opts: Omit<BillingAppOptions, 'auth' | 'config'> & {
  config: Config;
  auth?: BillingAppOptions['auth'];
  /** Overrides config.billingPort (0 for any free port). */
  port?: number;
}): Promise<BillingApi> {
  const auth = opts.auth ?? verifierFromConfig(opts.config, opts.clock, opts.log.child({ component: 'auth' }));
  const app = buildBillingApp({ ...opts, auth });
  await app.listen({ host: opts.config.host, port: opts.port ?? opts.config.billingPort });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.config.billingPort;
  const url = `http://${opts.config.host.includes(':') ? `[${opts.config.host}]` : opts.config.host}:${port}`;
  opts.log.info({ url, algorithms: auth.algorithms }, 'billing API listening');
  return { app, url, close: () => app.close() };
}
