/**
 * The admission service as its own process: `npx tsx admission/main.ts`.
 * It needs only Redis (no ClickHouse, no PostgreSQL), so billing or ingest
 * load never stalls it. Logs one JSON line
 * {"msg":"admission listening","grpcPort":N,"httpPort":M} once both
 * listeners are bound; SIGTERM / SIGINT drain and exit 0.
 */
import { systemClock } from '../core/clock.ts';
import { runServiceMain } from '../core/service-main.ts';
import { startAdmission } from './server.ts';

runServiceMain('admission', async (config, log) => {
  const running = await startAdmission({ config, log, clock: systemClock, processMetrics: true });
  return { ports: { grpcPort: running.grpcPort, httpPort: running.httpPort }, stop: () => running.stop() };
});
