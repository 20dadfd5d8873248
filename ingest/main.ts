/**
 * The ingest service as its own process: `npx tsx ingest/main.ts`.
 * Logs one JSON line {"msg":"ingest listening","grpcPort":N,"httpPort":M}
 * once both listeners are bound; SIGTERM / SIGINT drain and exit 0.
 */
import { createClickHouse } from '../core/clickhouse/client.ts';
import { systemClock } from '../core/clock.ts';
import { runServiceMain } from '../core/service-main.ts';
import { startIngest } from './server.ts';

runServiceMain('ingest', async (config, log) => {
  const ch = createClickHouse({
    url: config.clickhouseUrl,
    user: config.clickhouseUser,
    password: config.clickhousePassword,
    database: config.clickhouseDatabase,
    chdbPath: config.chdbPath,
  });
  const running = await startIngest({ config, ch, clock: systemClock, log });
  return {
    ports: { grpcPort: running.grpcPort, httpPort: running.httpPort },
    stop: () => running.stop().then(() => ch.close()),
  };
});
