/**
 * The ingest service as its own process: `npx tsx ingest/main.ts`.
 * Logs one JSON line {"msg":"ingest listening","grpcPort":N,"httpPort":M}
 * once both listeners are bound; SIGTERM / SIGINT drain and exit 0.
 */
import { createClickHouse } from '../core/clickhouse/client.ts';
import { systemClock } from '../core/clock.ts';
import { ConfigError, loadConfig } from '../core/config.ts';
import { createLogger } from '../core/log.ts';
import { startIngest } from './server.ts';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) { console.error(e.message); process.exit(2); }
    throw e;
  }
  const log = createLogger({ level: config.logLevel, name: 'ingest' });
  const ch = createClickHouse({
    url: config.clickhouseUrl,
    user: config.clickhouseUser,
    password: config.clickhousePassword,
    database: config.clickhouseDatabase,
    chdbPath: config.chdbPath,
  });
  const running = await startIngest({ config, ch, clock: systemClock, log });
  // Whatever LOG_LEVEL says: scripts and tests read the ports from this line.
  log.child({}, { level: 'info' }).info({ grpcPort: running.grpcPort, httpPort: running.httpPort }, 'ingest listening');

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    log.info({ signal }, 'draining');
    running.stop()
      .then(() => ch.close())
      .then(() => process.exit(0), (err) => { log.error({ err }, 'drain failed'); process.exit(1); });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
