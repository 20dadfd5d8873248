/**
 * Crash test: a child process bills a seeded scenario (support/crash-child.ts,
 * its own chdb folder, its own PostgreSQL database, chunks of 25 bills). It
 * is SIGKILLed twice in the middle of writing a run's bills (once in the
 * first, catch-up run, once in the last run, where late usage is billed),
 * then rerun to completion on the same folder and database. Another child
 * bills the same scenario cleanly on a second folder and database. The two
 * sets of bills must be equal to the cent (ids and creation times aside),
 * and both must be what the reference rater expects.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { tempDir } from '../../test/helpers.ts';
import { freshPostgres, type FreshPostgres } from '../../test/pg.ts';
import { referenceBills } from '../domain/index.ts';
import { asStored, readBills, tariff } from './support/harness.ts';
import { CRASH_CHUNK_SIZE, CRASH_SCENARIO_SIZE, scenarioArb } from './support/scenario.ts';
import { ms } from './support/calls.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CHILD = path.join(ROOT, 'billing/test/support/crash-child.ts');
/** A scenario whose first run (catch-up) and last run each bill hundreds of periods, so ~20 chunks each. */
const SEED = 5;

interface Progress { run: number; done: number; of: number }

const open: { dbs: FreshPostgres[]; dirs: string[]; children: ChildProcess[] } = { dbs: [], dirs: [], children: [] };
afterAll(async () => {
  for (const c of open.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(open.dbs.map((d) => d.close()));
  for (const d of open.dirs) fs.rmSync(d, { recursive: true, force: true });
});

/**
 * Starts the child (node with tsx's loader, so the pid is the billing process itself, not a
 * launcher) and follows its stdout. With `killIn`, SIGKILLs it on the first progress line of that
 * run that has written at least one chunk and has at least two left.
 */
function runChild(dir: string, db: FreshPostgres, opts: { killIn?: number; pauseMs?: number } = {}) {
  const args = ['--import', 'tsx', CHILD, String(SEED), ...(opts.pauseMs ? ['--pause-ms', String(opts.pauseMs)] : [])];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, PHONEBILL_DATA_DIR: dir, CHDB_PATH: path.join(dir, 'chdb'), CLICKHOUSE_URL: '', DATABASE_URL: db.url, LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  open.children.push(child);
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  let run = -1;
  let killedAt: Progress | undefined;
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (text) => {
    let o: { child?: { run?: number; asOf?: string }; msg?: string; done?: number; of?: number };
    try { o = JSON.parse(text); } catch { return; }
    if (o.child?.run !== undefined && o.child.asOf) run = o.child.run;
    if (o.msg === 'billing progress' && opts.killIn === run && !killedAt && o.done! >= CRASH_CHUNK_SIZE && o.of! - o.done! >= 2 * CRASH_CHUNK_SIZE) {
      killedAt = { run, done: o.done!, of: o.of! };
      child.kill('SIGKILL');
    }
  });
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; killedAt?: Progress }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (killedAt ? signal === 'SIGKILL' : code === 0) resolve({ code, signal, ...(killedAt ? { killedAt } : {}) });
      else reject(new Error(`child ended with ${code ?? signal}${opts.killIn === undefined ? '' : ` before it could be killed in run ${opts.killIn}`}: ${stderr}`));
    });
  });
}

async function billsIssuedAt(db: FreshPostgres, asOf: string): Promise<number> {
  const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM bills WHERE issued_at = $1`, [asOf]);
  return rows[0].n;
}

describe('billing run killed mid-write', () => {
  it('SIGKILLed twice and rerun, it leaves exactly the bills of a clean run, to the cent', async () => {
    const [scenario] = fc.sample(scenarioArb(CRASH_SCENARIO_SIZE), { seed: SEED, numRuns: 1 });
    const s = scenario!;
    const last = s.runs.length - 1;
    const asOfs = s.runs.map((r) => new Date(r.asOfMs).toISOString());
    const [dbA, dbB] = await Promise.all([freshPostgres({ prefix: 'crash' }), freshPostgres({ prefix: 'clean' })]);
    open.dbs.push(dbA, dbB);
    const [dirA, dirB] = [tempDir('phonebill-crash-'), tempDir('phonebill-clean-')];
    open.dirs.push(dirA, dirB);

    // The clean run proceeds alongside, in its own process, folder and database.
    const clean = runChild(dirB, dbB);
    clean.catch(() => {}); // awaited below; not an unhandled rejection if this test fails first

    const first = await runChild(dirA, dbA, { killIn: 0, pauseMs: 150 });
    expect([first.signal, first.killedAt?.run]).toEqual(['SIGKILL', 0]);
    const afterFirstKill = await billsIssuedAt(dbA, asOfs[0]!);
    expect(afterFirstKill).toBeGreaterThan(0);
    expect(afterFirstKill).toBeLessThan(first.killedAt!.of);
    // The killed run never finished: its ledger row is left running.
    expect((await dbA.pool.query(`SELECT status FROM billing_runs`)).rows).toEqual([{ status: 'running' }]);

    const second = await runChild(dirA, dbA, { killIn: last, pauseMs: 150 });
    expect([second.signal, second.killedAt?.run]).toEqual(['SIGKILL', last]);
    const afterSecondKill = await billsIssuedAt(dbA, asOfs[last]!);
    expect(afterSecondKill).toBeGreaterThan(0);
    expect(afterSecondKill).toBeLessThan(second.killedAt!.of);

    expect((await runChild(dirA, dbA)).code).toBe(0);
    await clean;

    const [resumed, reference] = await Promise.all([readBills(dbA.pool), readBills(dbB.pool)]);
    expect(resumed.length).toBeGreaterThan(800);
    expect(resumed.some((b) => b.lines.some((l) => l.kind === 'late_usage'))).toBe(true);
    expect(resumed).toEqual(reference);

    // And both are what the reference rater says.
    const byPhone = new Map<string, typeof resumed>();
    for (const b of resumed) byPhone.set(b.phoneNumber, [...(byPhone.get(b.phoneNumber) ?? []), b]);
    for (const sub of s.subscribers) {
      const mine = byPhone.get(sub.phoneNumber) ?? [];
      const expected = referenceBills({
        tariff, subscriber: { id: sub.phoneNumber, plan: 'standard', ...sub }, calls: s.calls.filter((c) => c.source === sub.phoneNumber),
        bills: mine.map((b) => ({ periodIndex: b.periodIndex, watermarkMs: ms(b.watermark) })),
      });
      expect(mine.map(({ issuedAt: _i, dueAt: _d, status: _s, ...b }) => b)).toEqual(expected.map((e) => asStored(sub.phoneNumber, e)));
    }
    const runs = (await dbA.pool.query(`SELECT status, count(*)::int AS n FROM billing_runs GROUP BY status ORDER BY status`)).rows;
    expect(runs).toEqual([{ status: 'running', n: 2 }, { status: 'succeeded', n: s.runs.length * 2 - 1 }]);
  }, 120_000);
});
