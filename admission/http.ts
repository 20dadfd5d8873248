/**
 * The admission service's HTTP side: GET /metrics (Prometheus) and
 * GET /healthz, the replica's state in JSON: 200 once a state was loaded
 * (also while Redis is down: calls are still answered from the replica, and
 * `ageSeconds` says how old it is), 503 before the first load and while
 * draining.
 */
import type http from 'node:http';
import { listenHttp, type ListeningHttp } from '../core/http.ts';
import type { Logger } from '../core/log.ts';
import type { AdmissionMetrics } from './metrics.ts';
import type { ReplicaStatus } from './replica/sync.ts';

export type AdmissionHttp = ListeningHttp;

export interface AdmissionHttpDeps {
  metrics: AdmissionMetrics;
  log: Logger;
  status: () => ReplicaStatus;
  draining: () => boolean;
  noStatePolicy: 'allow' | 'deny';
}

export type HealthBody = ReplicaStatus & { status: 'serving' | 'no_state' | 'draining'; noStatePolicy: 'allow' | 'deny' };

const json = (res: http.ServerResponse, status: number, body: unknown) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
};

export function createAdmissionHttpHandler(deps: AdmissionHttpDeps): http.RequestListener {
  return (req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== '/metrics' && path !== '/healthz') return json(res, 404, { error: `no route ${path}` });
    if (req.method !== 'GET') return json(res, 405, { error: `${req.method} not allowed on ${path}` });
    if (path === '/healthz') {
      const s = deps.status();
      const status = deps.draining() ? 'draining' : s.loaded ? 'serving' : 'no_state';
      const body: HealthBody = { status, noStatePolicy: deps.noStatePolicy, ...s };
      return json(res, status === 'serving' ? 200 : 503, body);
    }
    deps.metrics.registry.metrics().then((text) => {
      res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
      res.end(text);
    }, (err) => {
      deps.log.error({ err }, 'admission: /metrics failed');
      json(res, 500, { error: 'internal error' });
    });
  };
}

export function listenAdmissionHttp(deps: AdmissionHttpDeps, host: string, port: number): Promise<AdmissionHttp> {
  return listenHttp(createAdmissionHttpHandler(deps), host, port);
}
