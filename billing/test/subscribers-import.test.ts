/** Subscriber bulk import (CSV) and the `phonebill subscribers` / `phonebill token` commands, end to end. */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { fixedClock } from '../../core/clock.ts';
import { freshPostgres, type FreshPostgres } from '../../test/pg.ts';
import { tempDir } from '../../test/helpers.ts';
import { createSubscriberRepository } from '../adapters/postgres/index.ts';
import { createTokenVerifier } from '../auth/index.ts';
import { importSubscribersCsv } from '../subscribers/index.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const run = promisify(execFile);

let db: FreshPostgres | undefined;
afterEach(async () => { await db?.close(); db = undefined; });

async function cli(args: string[], env: Record<string, string>) {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(ROOT, 'bin/phonebill.mjs'), ...args], {
      cwd: ROOT, env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'silent', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

const CSV = [
  'phone_number,subscription_date,time_zone,plan', // line 1
  '+12025550100,2024-01-31,America/New_York,',     // 2 ok (plan defaults)
  '+14165550100,2024-02-29,America/Toronto,saver', // 3 ok
  '+12025550101,2023-02-29,America/New_York,',     // 4 no such date
  '2025550102,2024-01-01,Europe/Paris,gold',       // 5 three bad fields, one row
  '+12025550100,2024-03-01,America/Chicago,',      // 6 repeats line 2
  '',                                              // 7 blank: skipped
  '+18005550100,2024-01-01,America/New_York,',     // 8 toll-free
  '+16045550100,2024-01-15,America/Vancouver',     // 9 ok: trailing plan left off
  '+13125550100,2024-01-15,America/Chicago,standard,extra', // 10 too many columns
  '+18085550100,2024-01-15,Pacific/Honolulu,standard',      // 11 ok
].join('\n') + '\n';

describe('phonebill subscribers import', () => {
  it('keeps the good rows and reports each bad one with line, column and reason', async () => {
    db = await freshPostgres();
    const file = path.join(tempDir('import-'), 'subs.csv');
    fs.writeFileSync(file, CSV);
    const r = await cli(['subscribers', 'import', file], { DATABASE_URL: db.url });
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      `${file}:4: subscription_date: 2023-02-29 does not exist (2023-02 has 28 days)`,
      `${file}:5: phone_number: must be E.164 +1NPANXXXXXX`,
      `${file}:5: time_zone: time zone "Europe/Paris" is not served: only US and Canadian zones from America/St_Johns to Pacific/Honolulu (incl. America/Puerto_Rico and America/St_Thomas)`,
      `${file}:5: plan: unknown plan "gold"; plans: saver, standard`,
      `${file}:6: phone_number: +12025550100 repeats line 2 (skipped)`,
      `${file}:8: phone_number: +18005550100 is toll-free, not a geographic subscriber line`,
      `${file}:10: row: expected 4 columns, got 5`,
    ]);
    expect(r.stdout).toMatch(/^9 rows: 4 added, 1 duplicate, 4 invalid \(\d+\.\d s\)\n$/);
    const { rows } = await db.pool.query('SELECT phone_number, subscription_date, time_zone, plan, anniversary_day FROM subscribers ORDER BY phone_number');
    expect(rows).toEqual([
      { phone_number: '+12025550100', subscription_date: '2024-01-31', time_zone: 'America/New_York', plan: 'standard', anniversary_day: 31 },
      { phone_number: '+14165550100', subscription_date: '2024-02-29', time_zone: 'America/Toronto', plan: 'saver', anniversary_day: 29 },
      { phone_number: '+16045550100', subscription_date: '2024-01-15', time_zone: 'America/Vancouver', plan: 'standard', anniversary_day: 15 },
      { phone_number: '+18085550100', subscription_date: '2024-01-15', time_zone: 'Pacific/Honolulu', plan: 'standard', anniversary_day: 15 },
    ]);
  });

  it('importing the same clean file twice adds nothing the second time and succeeds', async () => {
    db = await freshPostgres();
    const file = path.join(tempDir('import-'), 'clean.csv');
    fs.writeFileSync(file, 'time_zone,phone_number,subscription_date\nAmerica/St_Johns,+17095550100,2024-03-31\nAmerica/Denver,+13035550100,2024-01-01\n');
    const first = await cli(['subscribers', 'import', file], { DATABASE_URL: db.url });
    expect([first.code, first.stderr, first.stdout.replace(/ \(.*\)/, '')]).toEqual([0, '', '2 rows: 2 added, 0 duplicates, 0 invalid\n']);
    const again = await cli(['subscribers', 'import', file], { DATABASE_URL: db.url });
    expect(again.code).toBe(0);
    expect(again.stderr.trimEnd().split('\n')).toEqual([
      `${file}:2: phone_number: +17095550100 is already a subscriber (skipped)`,
      `${file}:3: phone_number: +13035550100 is already a subscriber (skipped)`,
    ]);
    expect(again.stdout.replace(/ \(.*\)/, '')).toBe('2 rows: 0 added, 2 duplicates, 0 invalid\n');
  });

  it('a bad header or a missing file is refused before anything is written (exit 2)', async () => {
    db = await freshPostgres();
    const dir = tempDir('import-');
    fs.writeFileSync(path.join(dir, 'h.csv'), 'phone,subscription_date,time_zone\n+12025550100,2024-01-31,America/New_York\n');
    const h = await cli(['subscribers', 'import', path.join(dir, 'h.csv')], { DATABASE_URL: db.url });
    expect([h.code, h.stderr]).toEqual([2, `phonebill subscribers import: ${path.join(dir, 'h.csv')}: header: unknown column "phone"; expected phone_number,subscription_date,time_zone,plan (plan optional)\n`]);
    const m = await cli(['subscribers', 'import', path.join(dir, 'nope.csv')], { DATABASE_URL: db.url });
    expect([m.code, m.stderr]).toEqual([2, `phonebill subscribers import: cannot read ${path.join(dir, 'nope.csv')}: ENOENT\n`]);
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM subscribers');
    expect(rows[0].n).toBe(0);
  });

  it('in batches: duplicates across batch boundaries and against existing rows are all found', async () => {
    db = await freshPostgres();
    const repo = createSubscriberRepository(db.pool);
    await repo.insert({ phoneNumber: '+12025550105', subscriptionDate: '2024-01-01', timeZone: 'America/New_York', plan: 'standard' });
    const lines = ['phone_number,subscription_date,time_zone'];
    for (let i = 0; i < 10; i++) lines.push(`+1202555010${i},2024-01-${String(i + 1).padStart(2, '0')},America/New_York`);
    lines.push('+12025550103,2024-02-01,America/New_York');
    const progress: number[] = [];
    const s = await importSubscribersCsv(Readable.from([lines.join('\n')]), { repo, batchSize: 3, onProgress: (p) => progress.push(p.rows) });
    expect({ ...s, problems: s.problems.map((p) => `${p.line}:${p.kind}:${p.reason}`) }).toEqual({
      rows: 11, added: 9, duplicates: 2, invalid: 0, problemsOmitted: 0,
      problems: ['7:duplicate:+12025550105 is already a subscriber', '12:duplicate:+12025550103 repeats line 5'],
    });
    expect(progress).toEqual([3, 6, 9, 11]);
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM subscribers');
    expect(rows[0].n).toBe(10);
  });
});

describe('phonebill subscribers add', () => {
  it('adds one subscriber and names the flag at fault', async () => {
    db = await freshPostgres();
    const ok = await cli(['subscribers', 'add', '--phone', '+15145550100', '--date', '2024-02-29', '--zone', 'America/Toronto'], { DATABASE_URL: db.url });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/), phoneNumber: '+15145550100', subscriptionDate: '2024-02-29', timeZone: 'America/Toronto',
      anniversaryDay: 29, plan: 'standard', status: 'active', createdAt: expect.any(String),
    });
    const bad = await cli(['subscribers', 'add', '--phone', '+15145550100', '--date', '2024-02-30', '--zone', 'America/Toronto'], { DATABASE_URL: db.url });
    expect([bad.code, bad.stderr]).toEqual([2, 'phonebill subscribers add: --date: 2024-02-30 does not exist (2024-02 has 29 days)\n']);
    const dup = await cli(['subscribers', 'add', '--phone', '+15145550100', '--date', '2024-02-28', '--zone', 'America/Toronto'], { DATABASE_URL: db.url });
    expect([dup.code, dup.stderr]).toEqual([1, 'phonebill subscribers add: --phone: +15145550100 is already a subscriber\n']);
  });
});

describe('phonebill token', () => {
  const secret = 'cli-secret-0123456789-abcdefghijklmnopq';
  it('prints a token the API verifier accepts, with the role and subscriber asked for', async () => {
    const sub = '3f2c1b9e-8a7d-4c6b-9e5f-1a2b3c4d5e6f';
    const r = await cli(['token', '--subscriber', sub, '--ttl', '15m'], { JWT_SECRET: secret });
    expect([r.code, r.stderr]).toEqual([0, '']);
    const v = createTokenVerifier({ secret, issuer: 'phonebill', audience: 'phonebill-api', clock: fixedClock(Date.now()) });
    expect(await v.verify(r.stdout.trim())).toEqual({ role: 'subscriber', subscriberId: sub });
    const payload = JSON.parse(Buffer.from(r.stdout.split('.')[1]!, 'base64url').toString());
    expect(payload.exp - payload.iat).toBe(900);
    const op = await cli(['token', '--operator'], { JWT_SECRET: secret, JWT_ISSUER: 'acme', JWT_AUDIENCE: 'acme-billing' });
    const vo = createTokenVerifier({ secret, issuer: 'acme', audience: 'acme-billing', clock: fixedClock(Date.now()) });
    expect(await vo.verify(op.stdout.trim())).toEqual({ role: 'operator' });
  });

  it('with no key source configured, signs with the development secret kept in the data folder', async () => {
    const dataDir = tempDir('phonebill-devsecret-');
    const first = await cli(['token', '--operator'], { PHONEBILL_DATA_DIR: dataDir });
    expect([first.code, first.stderr]).toEqual([0, '']);
    const devSecret = fs.readFileSync(path.join(dataDir, 'dev-jwt-secret'), 'utf8').trim();
    expect(devSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((fs.statSync(path.join(dataDir, 'dev-jwt-secret')).mode & 0o777).toString(8)).toBe('600');
    const v = createTokenVerifier({ secret: devSecret, issuer: 'phonebill', audience: 'phonebill-api', clock: fixedClock(Date.now()) });
    expect(await v.verify(first.stdout.trim())).toEqual({ role: 'operator' });
    // The same secret the next time (npm start and the CLI agree on it).
    const second = await cli(['token', '--operator'], { PHONEBILL_DATA_DIR: dataDir });
    expect(await v.verify(second.stdout.trim())).toEqual({ role: 'operator' });
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('refuses when production keys are configured, without a role, or with a subscriber id that is not a UUID', async () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(await cli(['token', '--operator'], { JWT_PUBLIC_KEY: pem })).toEqual({ code: 2, stdout: '', stderr: 'phonebill token: JWT_SECRET is not set; development tokens are signed with it (production tokens come from your identity provider)\n' });
    const none = await cli(['token'], { JWT_SECRET: secret });
    expect([none.code, none.stderr.split('\n')[0]]).toEqual([2, 'phonebill token: choose exactly one of --operator, --subscriber ID, --payments']);
    const bad = await cli(['token', '--subscriber', '42'], { JWT_SECRET: secret });
    expect([bad.code, bad.stderr]).toEqual([2, 'phonebill token: --subscriber must be the subscriber\'s id (a UUID), got "42"\n']);
  });
});
