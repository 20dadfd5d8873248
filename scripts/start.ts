/**
 * `npm start`: every service in the foreground on the embedded defaults.
 * Local Redis and PostgreSQL come from scripts/stack.sh (left alone when
 * REDIS_URL / DATABASE_URL point elsewhere). Ingest and billing share this
 * process and its ClickHouse handle (the embedded engine admits one process
 * per data folder). Ctrl-C / SIGTERM drain everything and exit.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClickHouse } from '../core/clickhouse/client.ts';
import { migrateClickHouse } from '../core/clickhouse/migrate.ts';
import { systemClock } from '../core/clock.ts';
import { ConfigError, loadDevConfig } from '../core/config.ts';
import { createLogger } from '../core/log.ts';
import { startIngest } from '../ingest/index.ts';
import { startBilling } from '../billing/main.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

async function main(): Promise<void> {
  let config;
  try { config = loadDevConfig(); } catch (e) {
    if (e instanceof ConfigError) { console.error(e.message); process.exit(2); }
    throw e;
  }
  const log = createLogger({ level: config.logLevel, name: 'phonebill' });
  if (config.usingDevSecret) log.warn({ file: path.join(config.dataDir, 'dev-jwt-secret') }, 'no JWT key source configured: using the development secret (never in production)');
  execFileSync('bash', [path.join(root, 'scripts/stack.sh'), 'up'], { stdio: ['ignore', 'inherit', 'inherit'] });

  const ch = createClickHouse({
    url: config.clickhouseUrl, user: config.clickhouseUser, password: config.clickhousePassword,
    database: config.clickhouseDatabase, chdbPath: config.chdbPath,
  });
  await migrateClickHouse(ch);
  const ingest = await startIngest({ config, ch, clock: systemClock, log });
  const billing = await startBilling({ config, ch, clock: systemClock, log });
  // Scripts and tests read the ports from this line, whatever LOG_LEVEL says.
  log.child({}, { level: 'info' }).info({
    ingestGrpcPort: ingest.grpcPort, ingestHttpPort: ingest.httpPort, billingUrl: billing.api.url,
    clickhouse: ch.embedded ? `embedded (${config.chdbPath})` : 'server',
  }, 'phonebill started');

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: draining ingest, finishing a billing run in progress');
    Promise.allSettled([ingest.stop(), billing.stop()])
      .then(async (results) => {
        await ch.close();
        const failed = results.filter((r) => r.status === 'rejected');
        for (const f of failed) log.error({ err: (f as PromiseRejectedResult).reason }, 'stop failed');
        process.exit(failed.length ? 1 : 0);
      });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
