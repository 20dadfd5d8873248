/**
 * `npm start`: every service in the foreground on the embedded defaults.
 * Local Redis and PostgreSQL come from scripts/stack.sh (left alone when
 * REDIS_URL / DATABASE_URL point elsewhere). Ingest and billing share this
 * process and its ClickHouse handle (the embedded engine admits one process
 * per data folder); admission runs as its own child process (it needs only
 * Redis, so billing or ingest load never stalls it). Ctrl-C / SIGTERM drain
 * everything and exit.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
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

/** Starts admission/main.ts as a child; resolves with its ports once it listens. Its log lines pass through. */
function startAdmissionChild(extraEnv: Record<string, string>): Promise<{ child: ChildProcess; grpcPort: number; httpPort: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'admission/main.ts')], {
    cwd: root, env: { ...process.env, ...extraEnv }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  // Whatever ends this process, admission must not outlive it.
  process.on('exit', () => { if (child.exitCode === null) child.kill('SIGTERM'); });
  return new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      process.stdout.write(`${line}\n`);
      if (!line.includes('admission listening')) return;
      try {
        const j = JSON.parse(line) as { grpcPort: number; httpPort: number };
        resolve({ child, grpcPort: j.grpcPort, httpPort: j.httpPort });
      } catch { /* not the JSON line */ }
    });
    child.once('exit', (code) => reject(new Error(`admission exited (${code}) before listening`)));
    child.once('error', reject);
  });
}

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
  const admission = startAdmissionChild(config.usingDevSecret ? { JWT_SECRET: config.jwtSecret! } : {});
  admission.catch(() => {}); // awaited below; a start-up failure elsewhere must not leave it unhandled
  const ingest = await startIngest({ config, ch, clock: systemClock, log });
  const billing = await startBilling({ config, ch, clock: systemClock, log });
  const adm = await admission;
  // Scripts and tests read the ports from these lines, whatever LOG_LEVEL says.
  const out = log.child({}, { level: 'info' });
  out.info({
    ingestGrpcPort: ingest.grpcPort, ingestHttpPort: ingest.httpPort, billingUrl: billing.api.url,
    admissionGrpcPort: adm.grpcPort, admissionHttpPort: adm.httpPort,
    clickhouse: ch.embedded ? `embedded (${config.chdbPath})` : 'server',
  }, 'phonebill started');
  out.info({ grpcPort: ingest.grpcPort, httpPort: ingest.httpPort }, 'ingest listening');

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: draining ingest, finishing a billing run in progress');
    const admissionExit = new Promise<void>((resolve) => {
      if (adm.child.exitCode !== null) return resolve();
      adm.child.once('exit', () => resolve());
      adm.child.kill('SIGTERM');
    });
    Promise.allSettled([ingest.stop(), billing.stop(), admissionExit])
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
