/**
 * The ingest service's HTTP side: GET /metrics (Prometheus), GET /healthz and
 * POST /sql, which runs one read-only statement on the engine this process
 * owns (the embedded data folder can be opened by one process only, so
 * `npm run sql` comes here while the service runs).
 *
 * POST /sql: body = the statement (text). 200 with ClickHouse's JSONCompact
 * output ({"meta":[{"name","type"}],"data":[[…]],"rows":N,…}); 400
 * {"error": "…"} for an empty, invalid or writing statement; 413 past 1 MiB.
 */
import type http from 'node:http';
import { listenHttp, type ListeningHttp } from '../core/http.ts';
import type { ClickHouse } from '../core/clickhouse/client.ts';
import { readOnlySettings, readOnlyStatement } from '../core/clickhouse/readonly.ts';
import { isDomainError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { IngestMetrics } from './metrics.ts';

const MAX_SQL_BYTES = 1024 * 1024;

export type IngestHttp = ListeningHttp;

export interface IngestHttpDeps {
  ch: ClickHouse;
  metrics: IngestMetrics;
  log: Logger;
  /** False while draining: /healthz then answers 503. */
  healthy: () => boolean;
}

const json = (res: http.ServerResponse, status: number, body: unknown) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
};

export function createIngestHttpHandler(deps: IngestHttpDeps): http.RequestListener {
  const { ch, metrics, log } = deps;

  async function sql(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > MAX_SQL_BYTES) return json(res, 413, { error: `sql: longer than ${MAX_SQL_BYTES} bytes` });
      chunks.push(c as Buffer);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    let statement: string;
    try {
      statement = await readOnlyStatement(ch, text);
    } catch (err) {
      if (isDomainError(err)) return json(res, 400, { error: err.message });
      throw err;
    }
    let body: string;
    try {
      const rs = await ch.client.query({ query: statement, format: 'JSONCompact', clickhouse_settings: readOnlySettings(ch) });
      body = await rs.text();
    } catch (err) {
      // The engine refused the statement (unknown table, type error…): the caller's to fix.
      return json(res, 400, { error: `sql: ${(err as Error).message.split('\n', 1)[0]}` });
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = `${req.method} ${url.pathname}`;
    const run = async () => {
      switch (route) {
        case 'GET /metrics': {
          const text = await metrics.registry.metrics();
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
          return;
        }
        case 'GET /healthz':
          return deps.healthy() ? json(res, 200, { status: 'ok' }) : json(res, 503, { status: 'draining' });
        case 'POST /sql':
          return sql(req, res);
        default:
          if (['/metrics', '/healthz', '/sql'].includes(url.pathname)) return json(res, 405, { error: `${req.method} not allowed on ${url.pathname}` });
          return json(res, 404, { error: `no route ${url.pathname}` });
      }
    };
    run().catch((err) => {
      log.error({ err, route }, 'ingest http request failed');
      if (!res.headersSent) json(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  };
}

export function listenIngestHttp(deps: IngestHttpDeps, host: string, port: number): Promise<IngestHttp> {
  return listenHttp(createIngestHttpHandler(deps), host, port);
}
