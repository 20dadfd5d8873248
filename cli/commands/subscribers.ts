/** `phonebill subscribers import FILE.csv` and `phonebill subscribers add …`. */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import type { CliCommand } from '../command.ts';
import { loadConfig } from '../../core/config.ts';
import { isDomainError } from '../../core/errors.ts';
import { createPool, type Pool } from '../../core/postgres/index.ts';
import { createSubscriberRepository, migrateBilling } from '../../billing/adapters/postgres/index.ts';
import { createSubscriberService, formatImportSummary, importSubscribersCsv } from '../../billing/subscribers/index.ts';

const USAGE = `Usage:
  phonebill subscribers import FILE.csv [--batch-size 1000]
  phonebill subscribers add --phone +12025550143 --date 2024-01-31 --zone America/New_York [--plan standard]

import: the CSV has a header line naming its columns:
    phone_number,subscription_date,time_zone[,plan]
  phone_number is E.164 (+1 and ten digits), subscription_date a local date
  YYYY-MM-DD, time_zone a US or Canadian IANA zone, plan defaults to standard.
  Good rows are added; bad rows are reported as FILE:LINE: column: reason;
  numbers already subscribed are skipped as duplicates, so re-running an
  import is harmless. Exit code 0 when no row was invalid, 1 otherwise.

add: creates one subscriber and prints it as JSON.

Uses DATABASE_URL and applies pending migrations first.`;

async function withPool<T>(fn: (pool: Pool) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const pool = createPool(config.databaseUrl, { max: 2, applicationName: 'phonebill-cli' });
  try {
    await migrateBilling(pool);
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

async function runImport(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { 'batch-size': { type: 'string', default: '1000' } } });
  const file = positionals[0];
  if (!file || positionals.length > 1) { console.error(`phonebill subscribers import: give exactly one CSV file\n\n${USAGE}`); return 2; }
  const batchSize = Number(values['batch-size']);
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 50_000) { console.error('phonebill subscribers import: --batch-size must be an integer 1-50000'); return 2; }
  let size: number;
  try { size = fs.statSync(file).size; } catch (e) { console.error(`phonebill subscribers import: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`); return 2; }

  // A bar on a terminal only: piped output (CI, scripts) gets the summary alone.
  const bar = process.stderr.isTTY
    ? new cliProgress.SingleBar({ stream: process.stderr, format: 'importing {bar} {percentage}% | {rows} rows, {added} added | {eta_formatted} left', hideCursor: true }, cliProgress.Presets.shades_classic)
    : undefined;
  bar?.start(size, 0, { rows: 0, added: 0 });
  const started = Date.now();
  try {
    const summary = await withPool((pool) => importSubscribersCsv(fs.createReadStream(file), {
      repo: createSubscriberRepository(pool),
      batchSize,
      onProgress: (p) => bar?.update(p.bytes, { rows: p.rows, added: p.added }),
    }));
    bar?.update(size);
    bar?.stop();
    const lines = formatImportSummary(summary, file);
    for (const l of lines.slice(0, -1)) console.error(l);
    console.log(`${lines[lines.length - 1]} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    return summary.invalid > 0 ? 1 : 0;
  } catch (e) {
    bar?.stop();
    if (isDomainError(e) && e.kind === 'invalid') { console.error(`phonebill subscribers import: ${file}: ${e.message}`); return 2; }
    throw e;
  }
}

async function runAdd(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: {
    phone: { type: 'string' }, date: { type: 'string' }, zone: { type: 'string' }, plan: { type: 'string' },
  } });
  try {
    const s = await withPool((pool) => createSubscriberService({ repo: createSubscriberRepository(pool) })
      .create({ phoneNumber: values.phone, subscriptionDate: values.date, timeZone: values.zone, plan: values.plan }));
    console.log(JSON.stringify({ ...s, createdAt: s.createdAt.toISOString() }));
    return 0;
  } catch (e) {
    if (isDomainError(e) && (e.kind === 'invalid' || e.kind === 'conflict')) {
      // Name the flag, not the API field.
      const flags: Record<string, string> = { phoneNumber: '--phone', subscriptionDate: '--date', timeZone: '--zone', plan: '--plan' };
      console.error(`phonebill subscribers add: ${e.message.replace(/\b(phoneNumber|subscriptionDate|timeZone|plan):/g, (_m, f: string) => `${flags[f]}:`)}`);
      return e.kind === 'invalid' ? 2 : 1;
    }
    throw e;
  }
}

export const command: CliCommand = {
  summary: 'Add subscribers, one or in bulk from a CSV file',
  usage: USAGE,
  async run(argv) {
    const [sub, ...rest] = argv;
    try {
      if (sub === 'import') return await runImport(rest);
      if (sub === 'add') return await runAdd(rest);
    } catch (e) {
      if ((e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) { console.error(`phonebill subscribers: ${(e as Error).message}\n\n${USAGE}`); return 2; }
      throw e;
    }
    console.error(`phonebill subscribers: unknown action ${JSON.stringify(sub ?? '')}\n\n${USAGE}`);
    return 2;
  },
};
