/**
 * The body of a service's main.ts: load and validate the config (exit 2 on a
 * problem, every variable named), start the service, log one JSON line
 * `{"msg":"<name> listening",…ports}` whatever LOG_LEVEL says (scripts and
 * tests read the ports from it), and drain on SIGTERM / SIGINT, exiting 0
 * (1 if the drain fails).
 */
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createLogger, type Logger } from './log.ts';

export interface StartedService {
  /** Logged on the listening line, e.g. { grpcPort, httpPort }. */
  ports: Record<string, number>;
  stop(): Promise<void>;
}

export function runServiceMain(name: string, start: (config: Config, log: Logger) => Promise<StartedService>): void {
  const main = async (): Promise<void> => {
    let config: Config;
    try {
      config = loadConfig();
    } catch (e) {
      if (e instanceof ConfigError) { console.error(e.message); process.exit(2); }
      throw e;
    }
    const log = createLogger({ level: config.logLevel, name });
    const running = await start(config, log);
    log.child({}, { level: 'info' }).info(running.ports, `${name} listening`);

    let signalled = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) return;
      signalled = true;
      log.info({ signal }, 'draining');
      running.stop().then(() => process.exit(0), (err) => { log.error({ err }, 'drain failed'); process.exit(1); });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  };
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
