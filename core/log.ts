import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** One root logger per process; services take child loggers carrying ids. */
export function createLogger(opts: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    base: { service: opts.name ?? 'phonebill' },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Tokens and passwords never reach the logs, whatever object they ride in.
    redact: {
      paths: ['authorization', 'req.headers.authorization', '*.password', 'password', 'token', '*.token', 'secret', '*.secret'],
      censor: '[redacted]',
    },
  };
  return opts.destination ? pino(options, opts.destination as pino.DestinationStream) : pino(options);
}

/** A logger that writes nothing, for tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
