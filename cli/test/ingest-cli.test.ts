/**
 * Bulk load through the real CLI against the real ingest service (a child
 * process on its own data folder), then the stored rows through
 * `phonebill sql`, with the service running and after it stopped.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers.ts';
import { REPO_ROOT, startIngestChild, type IngestChild } from '../../scripts/lib/ingest-child.ts';

const run = promisify(execFile);

interface Out { code: number; stdout: string; stderr: string }

async function cli(args: string[], env: Record<string, string>): Promise<Out> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env }, timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    if (typeof x.code !== 'number') throw e;
    return { code: x.code, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

/** "accepted 4" etc. from the summary. */
function counts(stdout: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of ['accepted', 'duplicates', 'rejected']) {
    const m = new RegExp(`^\\s+${k}\\s+([\\d,]+)`, 'm').exec(stdout);
    if (m) out[k] = Number(m[1]!.replace(/,/g, ''));
  }
  return out;
}

const CSV = [
  'call_id,source_number,target_number,start,end',
  'c1,+12125550123,+13125550188,2026-10-14T18:03:07-04:00,2026-10-14T18:05:07.250-04:00', // 2: domestic
  'c2,+14165550123,+12125550123,2026-10-14T22:00:00Z,2026-10-14T22:10:00Z', // 3: cross-border
  'c3,+12125550123,911,2026-10-15T01:00:00Z,2026-10-15T01:00:30.5Z', // 4: service code
  'c1,+12125550123,+13125550188,2026-10-14T18:03:07-04:00,2026-10-14T18:05:07.250-04:00', // 5: resent
  'c4,+12125550123,+13125550188,2026-10-14T22:00:00Z,2026-10-14T21:59:00Z', // 6: end before start
  'c5,+12125550123,+442079460000,2026-10-14T22:00:00Z,2026-10-14T22:00:30Z', // 7: not NANP
  'c6,+12125550123,+13125550188,2026-13-01T00:00:00Z,2026-10-14T22:00:30Z', // 8: bad timestamp
  ',+12125550123,+13125550188,2026-10-14T22:00:00Z,2026-10-14T22:00:30Z', // 9: no call_id
  'c8,+12125550123,short-row', // 10: unreadable
  'c7,+17095550123,+18005550100,2026-10-16T09:00:00-02:30,2026-10-16T09:20:00-02:30', // 11: toll-free from Newfoundland
].join('\n') + '\n';

const ev = (call_id: string, source_number: string, target_number: string, start: string, end: string) => JSON.stringify({ call_id, source_number, target_number, start, end });
const NDJSON = [
  ev('c1', '+12125550123', '+13125550188', '2026-10-14T18:03:07-04:00', '2026-10-14T18:05:07.250-04:00'), // 1: stored by the CSV load
  ev('n1', '+16045550123', '+18765550123', '2026-10-20T12:00:00-07:00', '2026-10-20T12:30:00-07:00'), // 2: NANP international
  '{"call_id": "n2", "source_number": "+18085550123", "target_number": "+19005550100", "start": "2026-10-21T08:00:00-10:00", "end": "2026-10-21T08:01:00-10:00"}', // 3: premium from Hawaii
  '{"call_id": "n9", "source_number": ', // 4: not JSON
  ev('n3', '+12125550123', '+13125550188', '2099-01-01T00:00:00Z', '2099-01-01T00:01:00Z'), // 5: future start
  ev('n1', '+16045550123', '+18765550123', '2026-10-20T12:00:00-07:00', '2026-10-20T12:30:00-07:00'), // 6: repeated in the file
].join('\n') + '\n';

const EXPECTED_CALLS = [
  ['c1', '+12125550123', '+13125550188', '2026-10-14 22:03:07.000', '2026-10-14 22:05:07.250', 120250, 'US', 'US', 'domestic'],
  ['c2', '+14165550123', '+12125550123', '2026-10-14 22:00:00.000', '2026-10-14 22:10:00.000', 600000, 'CA', 'US', 'cross_border'],
  ['c3', '+12125550123', '911', '2026-10-15 01:00:00.000', '2026-10-15 01:00:30.500', 30500, 'US', '', 'service_code'],
  ['c7', '+17095550123', '+18005550100', '2026-10-16 11:30:00.000', '2026-10-16 11:50:00.000', 1200000, 'CA', 'US', 'toll_free'],
  ['n1', '+16045550123', '+18765550123', '2026-10-20 19:00:00.000', '2026-10-20 19:30:00.000', 1800000, 'CA', 'JM', 'nanp_international'],
  ['n2', '+18085550123', '+19005550100', '2026-10-21 18:00:00.000', '2026-10-21 18:01:00.000', 60000, 'US', 'US', 'premium'],
];
const CALLS_SQL = 'SELECT call_id, source_number, target_number, started_at, ended_at, duration_ms, source_country, target_country, call_class FROM phonebill.calls ORDER BY call_id';
const REJECTED_SQL = 'SELECT call_id, source_number, field FROM phonebill.rejected_calls ORDER BY call_id, field, source_number';
const EXPECTED_REJECTED = [
  ['', '+12125550123', 'call_id'],
  ['', 'c8,+12125550123,short-row', 'call_id'],
  ['', '{"call_id": "n9", "source_number": ', 'call_id'],
  ['c4', '+12125550123', 'end'],
  ['c5', '+12125550123', 'target_number'],
  ['c6', '+12125550123', 'start'],
  ['n3', '+12125550123', 'start'],
];

describe('phonebill ingest and phonebill sql', () => {
  const dataDir = tempDir('phonebill-cli-');
  const files = tempDir('phonebill-cli-files-');
  const csv = path.join(files, 'calls.csv');
  const ndjson = path.join(files, 'calls.ndjson');
  let svc: IngestChild;
  let env: Record<string, string>;

  beforeAll(async () => {
    fs.writeFileSync(csv, CSV);
    fs.writeFileSync(ndjson, NDJSON);
    svc = await startIngestChild({ dataDir });
    env = { PHONEBILL_DATA_DIR: dataDir, CHDB_PATH: '', INGEST_HTTP_PORT: String(svc.httpPort), INGEST_PORT: String(svc.grpcPort) };
  });
  afterAll(async () => { await svc?.stop(); });

  it('loads a CSV file: exact counts, and each rejection listed by line with its reason', async () => {
    const r = await cli(['ingest', csv, '--addr', svc.addr, '--batch', '3'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(counts(r.stdout)).toEqual({ accepted: 4, duplicates: 1, rejected: 5 });
    expect(r.stdout).toContain('10 events sent');
    expect(r.stdout).toContain('(2 of them could not be read by the CLI; sent anyway so the service keeps them)');
    const listed = r.stdout.split('\n').filter((l) => /^\s+line\s/.test(l)).map((l) => l.trim().replace(/\s+/g, ' '));
    expect(listed).toHaveLength(5);
    expect(listed[0]).toMatch(/^line 6 call_id "c4" end: /);
    expect(listed[1]).toMatch(/^line 7 call_id "c5" target_number: not a North American \(NANP\) number/);
    expect(listed[2]).toBe('line 8 call_id "c6" start: "2026-13-01T00:00:00Z" is not a real date and time');
    expect(listed[3]).toMatch(/^line 9 call_id \(none\) call_id: /);
    expect(listed[4]).toMatch(/^line 10 call_id \(none\) line: unreadable CSV: Invalid Record Length/);
  });

  it('loads an NDJSON file: a call_id stored earlier and one repeated in the file count as duplicates', async () => {
    const r = await cli(['ingest', ndjson, '--addr', svc.addr, '--streams', '1'], env);
    expect(r.code).toBe(0);
    expect(counts(r.stdout)).toEqual({ accepted: 2, duplicates: 2, rejected: 2 });
    expect(r.stdout).toMatch(/line\s+4\s+call_id \(none\)\s+line: not JSON: /);
    expect(r.stdout).toMatch(/line\s+5\s+call_id "n3"\s+start: /);
  });

  it('stores exactly the accepted calls and every rejected line, read back through the service', async () => {
    const calls = await cli(['sql', '--format', 'json', CALLS_SQL], env);
    expect(calls.stderr).toBe('');
    expect(JSON.parse(calls.stdout).data).toEqual(EXPECTED_CALLS);
    const rejected = await cli(['sql', '--format', 'json', REJECTED_SQL], env);
    expect(JSON.parse(rejected.stdout).data).toEqual(EXPECTED_REJECTED);
  });

  it('prints an aligned table with a row count', async () => {
    const r = await cli(['sql', 'SELECT call_class, count() AS calls FROM phonebill.calls GROUP BY call_class ORDER BY call_class'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe([
      'call_class          calls',
      '------------------  -----',
      'cross_border            1',
      'domestic                1',
      'nanp_international      1',
      'premium                 1',
      'service_code            1',
      'toll_free               1',
      '6 rows',
      '',
    ].join('\n'));
  });

  it.each([
    ['INSERT INTO phonebill.calls (call_id) SELECT \'x\'', 'InsertQuery'],
    ['DROP TABLE phonebill.calls', 'DropQuery'],
    ['ALTER TABLE phonebill.calls DELETE WHERE 1', 'AlterQuery'],
  ])('refuses a write: %s', async (query, node) => {
    const r = await cli(['sql', query], env);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`phonebill sql: refused: sql: only SELECT, WITH … SELECT, SHOW, DESCRIBE, EXISTS and EXPLAIN are allowed, got ${node}`);
  });

  it('refuses INSERT … VALUES too (its inline data reads as a FORMAT clause)', async () => {
    const r = await cli(['sql', 'INSERT INTO phonebill.calls (call_id) VALUES (\'x\')'], env);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('phonebill sql: refused: sql: ');
    const still = await cli(['sql', '--format', 'json', "SELECT count() FROM phonebill.calls WHERE call_id = 'x'"], env);
    expect(JSON.parse(still.stdout).data.map((r: unknown[]) => r.map(Number))).toEqual([[0]]);
  });

  it('refuses a missing file and an unknown format before connecting', async () => {
    const missing = await cli(['ingest', path.join(files, 'nope.csv'), '--addr', svc.addr], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('nope.csv: no such file');
    const txt = path.join(files, 'calls.txt');
    fs.writeFileSync(txt, CSV);
    const unknown = await cli(['ingest', txt, '--addr', svc.addr], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('pass --format csv or --format ndjson');
    const badHeader = path.join(files, 'bad.csv');
    fs.writeFileSync(badHeader, 'id,from,to,start,end\nx,+1,+1,a,b\n');
    const header = await cli(['ingest', badHeader, '--addr', svc.addr], env);
    expect(header.code).toBe(2);
    expect(header.stderr).toContain('missing: call_id, source_number, target_number');
  });

  it('with the service stopped: sql opens the embedded folder directly, ingest says to start the stack', async () => {
    expect(await svc.stop()).toBe(0);
    const calls = await cli(['sql', '--format', 'json', CALLS_SQL], env);
    expect(calls.stderr).toBe('');
    expect(JSON.parse(calls.stdout).data).toEqual(EXPECTED_CALLS);
    const refused = await cli(['sql', 'DROP TABLE phonebill.calls'], env);
    expect(refused.code).toBe(3);
    const count = await cli(['sql', '--format', 'json', 'SELECT count() FROM phonebill.calls'], env);
    // UInt64 comes unquoted from the embedded engine and quoted from a server.
    expect(JSON.parse(count.stdout).data.map((r: unknown[]) => r.map(Number))).toEqual([[6]]);

    const down = await cli(['ingest', csv, '--addr', svc.addr], env);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(`cannot reach the ingest service at ${svc.addr}`);
    expect(down.stderr).toContain('Start the stack with `npm start`');
  });

  it('says so when there is no embedded data yet', async () => {
    const empty = tempDir('phonebill-cli-empty-');
    const r = await cli(['sql', 'SELECT 1'], { ...env, PHONEBILL_DATA_DIR: empty });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no embedded ClickHouse data in ${path.join(empty, 'chdb')} yet`);
  });
});
