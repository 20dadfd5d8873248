/**
 * The admission service as its own process: `npx tsx admission/main.ts`.
 * It needs only Redis (no ClickHouse, no PostgreSQL), so billing or ingest
 * load never stalls it. Logs one JSON line
 * {"msg":"admission listening","grpcPort":N,"httpPort":M} once both
 * listeners are bound; SIGTERM / SIGINT drain and exit 0.
 */
import { systemClock } from '../core/clock.ts';
import { ConfigError, loadConfig } from '../core/config.ts';
import { createLogger } from '../core/log.ts';
import { startAdmission } from './server.ts';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) { console.error(e.message); process.exit(2); }
    throw e;
  }
  const log = createLogger({ level: config.logLevel, name: 'admission' });
  const running = await startAdmission({ config, log, clock: systemClock, processMetrics: true });
  // Whatever LOG_LEVEL says: scripts and tests read the ports from this line.
  log.child({}, { level: 'info' }).info({ grpcPort: running.grpcPort, httpPort: running.httpPort }, 'admission listening');

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    log.info({ signal }, 'draining');
    running.stop().then(() => process.exit(0), (err) => { log.error({ err }, 'drain failed'); process.exit(1); });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
