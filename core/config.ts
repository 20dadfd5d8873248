/**
 * The one place that reads process.env. Every key is declared once below with
 * its default and meaning (the README's table is this list); loadConfig
 * validates them all, reports every problem at once naming the variable, and
 * returns a frozen object.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import cron from 'node-cron';

type Parser<T> = (raw: string) => T;

interface Key<T> {
  env: string;
  default: string | undefined;
  doc: string;
  parse: Parser<T>;
}

const key = <T>(env: string, def: string | undefined, doc: string, parse: Parser<T>): Key<T> => ({ env, default: def, doc, parse });

const str: Parser<string> = (s) => s;
const optStr: Parser<string | undefined> = (s) => (s === '' ? undefined : s);
const int = (min: number, max: number): Parser<number> => (s) => {
  if (!/^-?\d+$/.test(s.trim())) throw new Error(`must be an integer, got ${JSON.stringify(s)}`);
  const n = Number(s);
  if (n < min || n > max) throw new Error(`must be between ${min} and ${max}, got ${n}`);
  return n;
};
const port: Parser<number> = int(0, 65535);
const url = (protocols: string[]): Parser<string | undefined> => (s) => {
  if (s === '') return undefined;
  let u: URL;
  try { u = new URL(s); } catch { throw new Error(`must be a URL, got ${JSON.stringify(s)}`); }
  if (!protocols.includes(u.protocol)) throw new Error(`must start with ${protocols.join(' or ')}, got ${u.protocol}`);
  return s;
};
const reqUrl = (protocols: string[]): Parser<string> => (s) => {
  const v = url(protocols)(s);
  if (v === undefined) throw new Error('must not be empty');
  return v;
};
const identifier: Parser<string> = (s) => {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(s)) throw new Error(`must be a plain identifier (letters, digits, _), got ${JSON.stringify(s)}`);
  return s;
};
const oneOf = <T extends string>(...values: T[]): Parser<T> => (s) => {
  if (!(values as string[]).includes(s)) throw new Error(`must be one of ${values.join(', ')}, got ${JSON.stringify(s)}`);
  return s as T;
};
const bytes: Parser<number> = (s) => {
  const m = /^(\d+)\s*(b|kib|mib|gib|kb|mb|gb)?$/i.exec(s.trim());
  if (!m) throw new Error(`must be a size such as 64MiB or 1048576, got ${JSON.stringify(s)}`);
  const unit = (m[2] ?? 'b').toLowerCase();
  const mult: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };
  return Number(m[1]) * mult[unit]!;
};

const nonEmpty: Parser<string> = (s) => {
  if (s.trim() === '') throw new Error('must not be empty');
  return s;
};
const secret = (minLength: number): Parser<string | undefined> => (s) => {
  if (s === '') return undefined;
  if (s.length < minLength) throw new Error(`must be at least ${minLength} characters, got ${s.length}`);
  return s;
};
const pemPublicKey: Parser<string | undefined> = (s) => {
  if (s === '') return undefined;
  // Environment files often carry the PEM on one line with literal \n.
  const pem = s.includes('\\n') ? s.replaceAll('\\n', '\n') : s;
  if (!/-----BEGIN PUBLIC KEY-----[\s\S]+-----END PUBLIC KEY-----/.test(pem)) throw new Error('must be a PEM public key (-----BEGIN PUBLIC KEY----- …)');
  return pem;
};
const cronOrOff: Parser<string | undefined> = (s) => {
  if (s.trim() === 'off') return undefined;
  if (!cron.validate(s)) throw new Error(`must be a cron expression such as "0 * * * *" or "off", got ${JSON.stringify(s)}`);
  return s;
};

export const KEYS = {
  dataDir: key('PHONEBILL_DATA_DIR', '.data', 'Folder for local state: the embedded ClickHouse data, local Redis and PostgreSQL.', str),
  logLevel: key('LOG_LEVEL', 'info', 'pino log level: fatal, error, warn, info, debug, trace, silent.', oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent')),
  host: key('PHONEBILL_HOST', '127.0.0.1', 'Address the services listen on.', str),

  clickhouseUrl: key('CLICKHOUSE_URL', '', 'ClickHouse server (http://host:8123). Empty: the embedded chdb engine in PHONEBILL_DATA_DIR/chdb.', url(['http:', 'https:'])),
  clickhouseUser: key('CLICKHOUSE_USER', 'default', 'ClickHouse user (server only).', str),
  clickhousePassword: key('CLICKHOUSE_PASSWORD', '', 'ClickHouse password (server only).', str),
  clickhouseDatabase: key('CLICKHOUSE_DATABASE', 'phonebill', 'ClickHouse database holding calls and rejected_calls.', identifier),
  chdbPath: key('CHDB_PATH', '', 'Data folder of the embedded engine. Empty: PHONEBILL_DATA_DIR/chdb.', optStr),

  redisUrl: key('REDIS_URL', 'redis://127.0.0.1:6379', 'Redis server. When unset, scripts/stack.sh starts a local one on this address.', reqUrl(['redis:', 'rediss:'])),
  redisKeyPrefix: key('REDIS_KEY_PREFIX', 'pb:', 'Prefix of every Redis key and channel phonebill uses (core/redis/layout.ts).', str),
  databaseUrl: key('DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/phonebill', 'PostgreSQL. When unset, scripts/stack.sh starts a local one on this address.', reqUrl(['postgres:', 'postgresql:'])),

  admissionPort: key('ADMISSION_PORT', '50051', 'Admission gRPC port.', port),
  ingestPort: key('INGEST_PORT', '50052', 'Ingest gRPC port.', port),
  ingestHttpPort: key('INGEST_HTTP_PORT', '9464', 'Ingest HTTP port: /metrics (Prometheus), /healthz and the read-only /sql used by `npm run sql`.', port),
  billingPort: key('BILLING_PORT', '8080', 'Billing HTTP API port.', port),

  ingestFlushRows: key('INGEST_FLUSH_ROWS', '50000', 'Group commit: write a batch when this many events are pending.', int(1, 1_000_000)),
  ingestFlushBytes: key('INGEST_FLUSH_BYTES', '16MiB', 'Group commit: write a batch when pending events hold this many bytes.', bytes),
  ingestFlushIntervalMs: key('INGEST_FLUSH_INTERVAL_MS', '200', 'Group commit: write pending events at least this often (ms).', int(1, 60_000)),
  ingestMaxPendingBytes: key('INGEST_MAX_PENDING_BYTES', '128MiB', 'Backpressure bound: memory held for events not yet durable. Past it, streams stop being read and unary calls get RESOURCE_EXHAUSTED.', bytes),
  ingestMaxCallSeconds: key('INGEST_MAX_CALL_SECONDS', '86400', 'Longest call accepted (end - start), in seconds.', int(1, 31 * 86400)),
  ingestMaxFutureSeconds: key('INGEST_MAX_FUTURE_SECONDS', '300', 'How far in the future a call may start or end (clock skew), in seconds.', int(0, 86400)),

  // --- billing: PostgreSQL subscribers and bills, the billing run, the billing HTTP API and its auth ---
  jwtSecret: key('JWT_SECRET', '', 'Development only: HS256 secret (at least 32 characters) verifying API tokens and signing `phonebill token`. The demo generates one. Leave empty in production and set JWT_PUBLIC_KEY or JWT_JWKS_URL.', secret(32)),
  jwtPublicKey: key('JWT_PUBLIC_KEY', '', 'Production: PEM public key (RSA, EC or Ed25519) verifying API tokens; algorithms follow the key type.', pemPublicKey),
  jwtJwksUrl: key('JWT_JWKS_URL', '', 'Production: JWKS URL of the identity provider verifying API tokens (asymmetric algorithms only).', url(['https:', 'http:'])),
  jwtIssuer: key('JWT_ISSUER', 'phonebill', 'Required `iss` claim of API tokens.', nonEmpty),
  jwtAudience: key('JWT_AUDIENCE', 'phonebill-api', 'Required `aud` claim of API tokens.', nonEmpty),
  billingDueDays: key('BILLING_DUE_DAYS', '21', 'A bill is due this many days after it is issued.', int(0, 365)),
  billingGraceSeconds: key('BILLING_GRACE_SECONDS', '3600', 'A period is billed only once it ended at least this long before the run\'s asOf, so late call records arrive first.', int(0, 7 * 86400)),
  billingWatermarkLagSeconds: key('BILLING_WATERMARK_LAG_SECONDS', '60', 'A bill covers calls ingested up to this long before the run (its watermark), so a group commit still being written is never half-read; later arrivals go on the next bill as late usage.', int(0, 3600)),
  billingChunkSize: key('BILLING_CHUNK_SIZE', '100000', 'Due periods rated in one ClickHouse query (over the calls of the chunk\'s range of callers) and written together (two PostgreSQL transactions, each a half of the subscribers) while the next chunk is rated.', int(1, 2_000_000)),
  billingSchedule: key('BILLING_SCHEDULE', '0 * * * *', 'node-cron expression for the billing run (hourly covers every zone\'s local midnight); `off` disables the schedule.', cronOrOff),

  // --- ingest: dedup window and graceful shutdown ---
  ingestDedupWindowDays: key('INGEST_DEDUP_WINDOW_DAYS', '62', 'Calls that started within this many days are deduplicated through an in-memory filter (2.5–5 bytes per call, loaded at start-up); older resends are looked up in ClickHouse, which is exact but slower.', int(0, 3660)),
  ingestShutdownGraceMs: key('INGEST_SHUTDOWN_GRACE_MS', '10000', 'On SIGTERM, how long open streams may keep sending before they are answered UNAVAILABLE (what they sent is made durable first; the switch resends and duplicates are dropped).', int(0, 600_000)),

  // --- admission: CanPlaceCall answered from an in-process replica of the Redis state ---
  admissionHttpPort: key('ADMISSION_HTTP_PORT', '9465', 'Admission HTTP port: /metrics (Prometheus) and /healthz (state age, sizes, Redis link).', port),
  admissionUnknownSubscriber: key('ADMISSION_UNKNOWN_SUBSCRIBER', 'deny', 'A caller that is not a subscriber: `deny` (UNKNOWN_SUBSCRIBER) or `allow` (ALLOWED).', oneOf('deny', 'allow')),
  admissionNoStatePolicy: key('ADMISSION_NO_STATE_POLICY', 'allow', 'The answer while no state was ever loaded from Redis (911 and out-of-area rules still apply): `allow` (ALLOWED) or `deny` (REASON_UNSPECIFIED). Logged loudly either way.', oneOf('allow', 'deny')),
  admissionEpochCheckMs: key('ADMISSION_EPOCH_CHECK_MS', '1000', 'How often each replica reads the Redis epoch key (ms): a new epoch or a failed earlier load triggers a full resync; a missing one (data loss) keeps the last replica.', int(10, 60_000)),

  // --- overdue: payments' effect on admission, the overdue sweep, the admission state published to Redis ---
  overdueSweepSeconds: key('OVERDUE_SWEEP_SECONDS', '60', 'Every this many seconds overdue state is recomputed from PostgreSQL and published to Redis, so a bill whose due time passes blocks its subscriber within one interval.', int(1, 86_400)),
  redisRebuildCheckSeconds: key('REDIS_REBUILD_CHECK_SECONDS', '2', 'Every this many seconds (and on every reconnect) billing checks that Redis still holds the admission state (its epoch key); if not (FLUSHALL, restart without persistence) it rebuilds it from PostgreSQL.', int(1, 60)),
} as const;

type Keys = typeof KEYS;
export type Config = { readonly [K in keyof Keys]: ReturnType<Keys[K]['parse']> };

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Reads and validates every key; throws one ConfigError listing all problems. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, k] of Object.entries(KEYS) as [string, Key<unknown>][]) {
    const raw = env[k.env] ?? k.default;
    if (raw === undefined) { problems.push(`${k.env}: is required`); continue; }
    try { out[name] = k.parse(raw); } catch (e) { problems.push(`${k.env}: ${(e as Error).message}`); }
  }
  if (problems.length) throw new ConfigError(problems);
  const c = out as Config & { chdbPath: string | undefined };
  if (!c.chdbPath) (out as Record<string, unknown>).chdbPath = path.join(c.dataDir, 'chdb');
  return Object.freeze(out) as Config;
}

/** The documented table of variables (README, `phonebill --help`). */
export function describeConfig(): { env: string; default: string; doc: string }[] {
  return Object.values(KEYS).map((k) => ({ env: k.env, default: k.default ?? '(required)', doc: k.doc }));
}

/**
 * loadConfig for local development: when no token key source is configured
 * (JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_URL all unset), a random HS256 secret
 * kept in PHONEBILL_DATA_DIR/dev-jwt-secret (created on first use, mode 600)
 * is used, so `npm start`, `phonebill token` and the demo agree on it.
 * Production sets one of the three and never reaches the file.
 */
export function loadDevConfig(env: Record<string, string | undefined> = process.env): Config & { usingDevSecret: boolean } {
  const base = loadConfig(env);
  if (base.jwtSecret || base.jwtPublicKey || base.jwtJwksUrl) return Object.freeze({ ...base, usingDevSecret: false });
  const file = path.join(base.dataDir, 'dev-jwt-secret');
  let secret: string;
  try {
    secret = fs.readFileSync(file, 'utf8').trim();
  } catch {
    fs.mkdirSync(base.dataDir, { recursive: true });
    secret = randomBytes(32).toString('base64url');
    try { fs.writeFileSync(file, secret + '\n', { mode: 0o600, flag: 'wx' }); } catch { secret = fs.readFileSync(file, 'utf8').trim(); }
  }
  return Object.freeze({ ...loadConfig({ ...env, JWT_SECRET: secret }), usingDevSecret: true });
}
