/** Listening with node:http for the services' small admin endpoints (/metrics, /healthz, /sql). */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ListeningHttp {
  server: http.Server;
  /** The bound port (the real one when asked for 0). */
  port: number;
  /** Stops listening and drops open connections (keep-alive scrapers would hold it open). */
  close(): Promise<void>;
}

export function listenHttp(handler: http.RequestListener, host: string, port: number): Promise<ListeningHttp> {
  const server = http.createServer(handler);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve({
        server,
        port: (server.address() as AddressInfo).port,
        close: () => new Promise<void>((res) => {
          server.close(() => res());
          server.closeAllConnections();
        }),
      });
    });
  });
}
