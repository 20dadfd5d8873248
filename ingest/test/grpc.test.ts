/**
 * The ingest service over real gRPC (port 0) into the real embedded engine,
 * one fresh database per test.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import type { ClickHouse } from '../../core/clickhouse/client.ts';
import { queryRows } from '../../core/clickhouse/client.ts';
import { fixedClock } from '../../core/clock.ts';
import { loadConfig } from '../../core/config.ts';
import { silentLogger } from '../../core/log.ts';
import { freshClickHouse } from '../../test/helpers.ts';
import { startIngest, type RunningIngest } from '../index.ts';
import { call, ingestClient, openBatchStream, recordBatches, recordCalls, recordOne, ts, type IngestClient } from './support.ts';

const NOW = Date.parse('2026-11-29T12:00:00Z');
const T = NOW - 3_600_000; // calls started an hour ago

interface Ctx { ch: ClickHouse; ingest: RunningIngest; client: IngestClient }
let open: Ctx[] = [];

async function start(env: Record<string, string> = {}, ch?: ClickHouse): Promise<Ctx> {
  ch ??= await freshClickHouse('ingest');
  const config = loadConfig({ INGEST_PORT: '0', INGEST_HTTP_PORT: '0', LOG_LEVEL: 'silent', ...env });
  const ingest = await startIngest({ config, ch, clock: fixedClock(NOW), log: silentLogger() });
  const ctx = { ch, ingest, client: ingestClient(ingest.grpcPort) };
  open.push(ctx);
  return ctx;
}

async function stop(ctx: Ctx): Promise<void> {
  ctx.client.close();
  await ctx.ingest.stop();
}

afterEach(async () => {
  for (const c of open) { await stop(c); await c.ch.close(); }
  open = [];
});

const ids = async (ch: ClickHouse) =>
  (await queryRows<{ call_id: string }>(ch, `SELECT call_id FROM ${ch.table('calls')} ORDER BY call_id`)).map((r) => r.call_id);

/** count() and uniqExact(call_id) without FINAL: equal when no call_id is stored twice. */
const counts = async (ch: ClickHouse) => {
  const r = (await queryRows<{ n: string | number; u: string | number }>(ch, `SELECT count() AS n, uniqExact(call_id) AS u FROM ${ch.table('calls')}`))[0]!;
  return { n: Number(r.n), u: Number(r.u) };
};

/** UInt64 comes back as a number from the embedded engine and as a string from a server. */
const countOf = async (ch: ClickHouse, table: string) =>
  Number((await queryRows<{ n: string | number }>(ch, `SELECT count() AS n FROM ${ch.table(table)}`))[0]!.n);

const metric = async (ctx: Ctx, name: string): Promise<number> => {
  const text = await (await fetch(`http://127.0.0.1:${ctx.ingest.httpPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
};

describe('RecordCalls', () => {
  it('stores valid events with their derived columns', async () => {
    const ctx = await start();
    const res = await recordCalls(ctx.client, [
      call('c1', T),
      call('c2', T + 1_000, { target_number: '911', end: ts(T + 1_000 + 5_250) }),
      call('c3', T + 2_000, { source_number: '+14165550123', target_number: '+16045551234' }),
      call('c4', T + 3_000, { target_number: '+18005550100' }),
      call('c5', T + 4_000, { target_number: '+19005550100' }),
      call('c6', T + 5_000, { target_number: '+18765550100' }),
      call('c7', Date.parse('1999-12-31T23:59:59.999Z')),
    ]);
    expect(res).toEqual({ accepted: '7', duplicates: '0', rejected: '0', rejections: [] });
    const rows = await queryRows(ctx.ch, `SELECT * FROM ${ctx.ch.table('calls')} ORDER BY call_id`);
    expect(rows).toEqual([
      { call_id: 'c1', source_number: '+12125550100', target_number: '+14165550123', started_at: '2026-11-29 11:00:00.000', ended_at: '2026-11-29 11:01:30.000', duration_ms: 90000, source_country: 'US', target_country: 'CA', call_class: 'cross_border', ingested_at: '2026-11-29 12:00:00.000' },
      { call_id: 'c2', source_number: '+12125550100', target_number: '911', started_at: '2026-11-29 11:00:01.000', ended_at: '2026-11-29 11:00:06.250', duration_ms: 5250, source_country: 'US', target_country: '', call_class: 'service_code', ingested_at: '2026-11-29 12:00:00.000' },
      { call_id: 'c3', source_number: '+14165550123', target_number: '+16045551234', started_at: '2026-11-29 11:00:02.000', ended_at: '2026-11-29 11:01:32.000', duration_ms: 90000, source_country: 'CA', target_country: 'CA', call_class: 'domestic', ingested_at: '2026-11-29 12:00:00.000' },
      { call_id: 'c4', source_number: '+12125550100', target_number: '+18005550100', started_at: '2026-11-29 11:00:03.000', ended_at: '2026-11-29 11:01:33.000', duration_ms: 90000, source_country: 'US', target_country: 'US', call_class: 'toll_free', ingested_at: '2026-11-29 12:00:00.000' },
      { call_id: 'c5', source_number: '+12125550100', target_number: '+19005550100', started_at: '2026-11-29 11:00:04.000', ended_at: '2026-11-29 11:01:34.000', duration_ms: 90000, source_country: 'US', target_country: 'US', call_class: 'premium', ingested_at: '2026-11-29 12:00:00.000' },
      { call_id: 'c6', source_number: '+12125550100', target_number: '+18765550100', started_at: '2026-11-29 11:00:05.000', ended_at: '2026-11-29 11:01:35.000', duration_ms: 90000, source_country: 'US', target_country: 'JM', call_class: 'nanp_international', ingested_at: '2026-11-29 12:00:00.000' },
      { call_id: 'c7', source_number: '+12125550100', target_number: '+14165550123', started_at: '1999-12-31 23:59:59.999', ended_at: '2000-01-01 00:01:29.999', duration_ms: 90000, source_country: 'US', target_country: 'CA', call_class: 'cross_border', ingested_at: '2026-11-29 12:00:00.000' },
    ]);
  });

  it('rejects each rule naming the field and the reason, and stores every rejection raw', async () => {
    const ctx = await start();
    const bad = [
      call('', T),
      call('x'.repeat(129), T),
      call('r-src', T, { source_number: '212-555-0100' }),
      call('r-tgt', T, { target_number: '+442071234567' }),
      call('r-nostart', T, { start: null }),
      call('r-noend', T, { end: null }),
      call('r-order', T, { end: ts(T - 1) }),
      call('r-long', NOW - 100_000_000, { end: ts(NOW - 100_000_000 + 86_400_001) }),
      call('r-future', NOW + 301_000, { end: ts(NOW + 302_000) }),
      call('r-endfuture', T, { end: ts(NOW + 400_000) }),
      call('r-tab\tid', T, { target_number: 'not\ta number' }),
    ];
    const res = await recordCalls(ctx.client, bad);
    const expected = [
      { call_id: '', field: 'call_id', reason: 'is required' },
      { call_id: 'x'.repeat(129), field: 'call_id', reason: 'must be at most 128 characters, got 129' },
      { call_id: 'r-src', field: 'source_number', reason: 'must be E.164 +1NPANXXXXXX' },
      { call_id: 'r-tgt', field: 'target_number', reason: 'not a North American (NANP) number' },
      { call_id: 'r-nostart', field: 'start', reason: 'is required' },
      { call_id: 'r-noend', field: 'end', reason: 'is required' },
      { call_id: 'r-order', field: 'end', reason: 'must not be before start' },
      { call_id: 'r-long', field: 'end', reason: 'call lasts 86401 s; at most 86400 s is allowed' },
      { call_id: 'r-future', field: 'start', reason: 'is 301 s in the future; at most 300 s is allowed' },
      { call_id: 'r-endfuture', field: 'end', reason: 'is 400 s in the future; at most 300 s is allowed' },
      { call_id: 'r-tab\tid', field: 'target_number', reason: 'must be E.164 +1NPANXXXXXX' },
    ];
    expect(res).toEqual({ accepted: '0', duplicates: '0', rejected: String(bad.length), rejections: expected });
    expect(await ids(ctx.ch)).toEqual([]);
    const stored = await queryRows<Record<string, string>>(ctx.ch,
      `SELECT call_id, field, reason, source_number, target_number, started_at, ended_at, received_at FROM ${ctx.ch.table('rejected_calls')} ORDER BY call_id, field`);
    expect(stored.map(({ call_id, field, reason }) => ({ call_id, field, reason }))).toEqual(
      [...expected].sort((a, b) => (a.call_id < b.call_id ? -1 : a.call_id > b.call_id ? 1 : a.field < b.field ? -1 : 1)));
    const tab = stored.find((r) => r.call_id === 'r-tab\tid')!;
    expect(tab).toMatchObject({ source_number: '+12125550100', target_number: 'not\ta number', started_at: '2026-11-29T11:00:00.000000000Z', ended_at: '2026-11-29T11:01:30.000000000Z', received_at: '2026-11-29 12:00:00.000' });
    expect(stored.find((r) => r.call_id === 'r-nostart')!.started_at).toBe('');
  });

  it('keeps the valid events of a stream that mixes valid and invalid ones, with exact counts', async () => {
    const ctx = await start();
    const res = await recordCalls(ctx.client, [
      call('m1', T), call('m-bad1', T, { source_number: '+1' }), call('m2', T + 1),
      call('m-bad2', T, { start: null }), call('m3', T + 2), call('m1', T), call('m4', T + 3),
    ]);
    expect(res).toMatchObject({ accepted: '4', duplicates: '1', rejected: '2' });
    expect(res.rejections.map((r) => r.call_id)).toEqual(['m-bad1', 'm-bad2']);
    expect(await ids(ctx.ch)).toEqual(['m1', 'm2', 'm3', 'm4']);
    expect(await countOf(ctx.ch, 'rejected_calls')).toBe(2);
  });

  it('counts a call_id repeated within one stream once', async () => {
    const ctx = await start();
    const res = await recordCalls(ctx.client, [call('a', T), call('b', T), call('a', T), call('c', T), call('b', T), call('a', T)]);
    expect(res).toMatchObject({ accepted: '3', duplicates: '3', rejected: '0' });
    expect(await counts(ctx.ch)).toEqual({ n: 3, u: 3 });
  });

  it('counts a call_id sent on two concurrent streams once, and a resend as duplicates only', async () => {
    const ctx = await start();
    const first = Array.from({ length: 10 }, (_, i) => call(`k${i}`, T + i));
    const second = Array.from({ length: 10 }, (_, i) => call(`k${i + 5}`, T + i + 5));
    const [r1, r2] = await Promise.all([recordCalls(ctx.client, first), recordCalls(ctx.client, second)]);
    expect(Number(r1.accepted) + Number(r2.accepted)).toBe(15);
    expect(Number(r1.duplicates) + Number(r2.duplicates)).toBe(5);
    expect(await counts(ctx.ch)).toEqual({ n: 15, u: 15 });
    const again = await recordCalls(ctx.client, first);
    expect(again).toMatchObject({ accepted: '0', duplicates: '10' });
    expect(await counts(ctx.ch)).toEqual({ n: 15, u: 15 });
  });

  it('asks ClickHouse only about ids the in-memory filter cannot rule out', async () => {
    const ctx = await start();
    const calls = Array.from({ length: 2000 }, (_, i) => call(`f${i}`, T + i));
    await recordBatches(ctx.client, [calls.slice(0, 1000), calls.slice(1000)]);
    expect(await metric(ctx, 'phonebill_ingest_dedup_lookups_total')).toBeLessThan(5);
    const res = await recordBatches(ctx.client, [calls.slice(0, 1000)]);
    expect(res).toMatchObject({ accepted: '0', duplicates: '1000' });
    expect(await metric(ctx, 'phonebill_ingest_dedup_lookups_total')).toBeGreaterThanOrEqual(1000);
  });
});

describe('RecordCallBatches', () => {
  it('counts duplicates within one message and across messages', async () => {
    const ctx = await start();
    const res = await recordBatches(ctx.client, [
      [call('b1', T), call('b1', T), call('b2', T), call('bad', T, { end: null })],
      [call('b2', T), call('b3', T)],
    ]);
    expect(res).toEqual({ accepted: '3', duplicates: '2', rejected: '1', rejections: [{ call_id: 'bad', field: 'end', reason: 'is required' }] });
    expect(await ids(ctx.ch)).toEqual(['b1', 'b2', 'b3']);
  });

  it('echoes the first 1,000 rejections but counts and stores them all', async () => {
    const ctx = await start();
    const bad = Array.from({ length: 1500 }, (_, i) => call(`bad${i}`, T, { start: null }));
    const res = await recordBatches(ctx.client, [bad.slice(0, 700), bad.slice(700), [call('ok', T)]]);
    expect(res.accepted).toBe('1');
    expect(res.rejected).toBe('1500');
    expect(res.rejections).toHaveLength(1000);
    expect(res.rejections[999]).toEqual({ call_id: 'bad999', field: 'start', reason: 'is required' });
    expect(await countOf(ctx.ch, 'rejected_calls')).toBe(1500);
  });
});

describe('dedup across restarts', () => {
  it('counts calls resent after the service restarted on the same database as duplicates', async () => {
    const first = await start();
    expect(await recordCalls(first.client, [call('r1', T), call('r2', T + 1), call('r3', T + 2)])).toMatchObject({ accepted: '3' });
    await stop(first);
    open = open.filter((c) => c !== first);
    const second = await start({}, first.ch);
    await second.ingest.service.ready;
    const res = await recordCalls(second.client, [call('r1', T), call('r2', T + 1), call('r3', T + 2), call('r4', T + 3)]);
    expect(res).toMatchObject({ accepted: '1', duplicates: '3' });
    expect(await counts(second.ch)).toEqual({ n: 4, u: 4 });
  });

  it('finds a resend that started before the dedup window in ClickHouse', async () => {
    const ctx = await start({ INGEST_DEDUP_WINDOW_DAYS: '30' });
    const old = NOW - 100 * 86_400_000;
    expect(await recordOne(ctx.client, call('ancient', old))).toMatchObject({ accepted: '1' });
    expect(await recordOne(ctx.client, call('ancient', old))).toMatchObject({ accepted: '0', duplicates: '1' });
    expect(await counts(ctx.ch)).toEqual({ n: 1, u: 1 });
  });
});

describe('RecordCall (unary)', () => {
  it('records one call, then reports its resend as a duplicate and a bad one as rejected', async () => {
    const ctx = await start();
    expect(await recordOne(ctx.client, call('u1', T))).toEqual({ accepted: '1', duplicates: '0', rejected: '0', rejections: [] });
    expect(await recordOne(ctx.client, call('u1', T))).toEqual({ accepted: '0', duplicates: '1', rejected: '0', rejections: [] });
    expect(await recordOne(ctx.client, call('u2', T, { target_number: '12' }))).toEqual({
      accepted: '0', duplicates: '0', rejected: '1',
      rejections: [{ call_id: 'u2', field: 'target_number', reason: 'must be E.164 +1NPANXXXXXX' }],
    });
  });

  it('answers RESOURCE_EXHAUSTED while pending memory is past the bound, and pauses streams', async () => {
    const ctx = await start({ INGEST_MAX_PENDING_BYTES: '1', INGEST_FLUSH_INTERVAL_MS: '1500' });
    const s = openBatchStream(ctx.client);
    await s.write([call('p1', T)]);
    await expect.poll(() => ctx.ingest.service.overloaded, { timeout: 5000 }).toBe(true);
    expect(await metric(ctx, 'phonebill_ingest_paused_streams')).toBe(1);
    const err = await recordOne(ctx.client, call('p2', T)).then(() => undefined, (e: grpc.ServiceError) => e);
    expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    s.end();
    expect(await s.response).toMatchObject({ accepted: '1' });
    expect(ctx.ingest.service.overloaded).toBe(false);
    expect(await recordOne(ctx.client, call('p2', T))).toMatchObject({ accepted: '1' });
  });
});

describe('failures', () => {
  it('answers UNAVAILABLE when the write fails, and stores the resend once the table is back', async () => {
    const ctx = await start();
    const calls = ctx.ch.table('calls');
    const away = ctx.ch.table('calls_away');
    await ctx.ch.client.command({ query: `RENAME TABLE ${calls} TO ${away}` });
    const err = await recordCalls(ctx.client, [call('w1', T), call('w2', T)]).then(() => undefined, (e: grpc.ServiceError) => e);
    expect(err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(err?.details).toBe('storing calls failed; nothing of this request is acknowledged, resend it');
    expect(await metric(ctx, 'phonebill_ingest_flush_failures_total')).toBe(1);
    await ctx.ch.client.command({ query: `RENAME TABLE ${away} TO ${calls}` });
    expect(await recordCalls(ctx.client, [call('w1', T), call('w2', T)])).toMatchObject({ accepted: '2', duplicates: '0' });
    expect(await counts(ctx.ch)).toEqual({ n: 2, u: 2 });
  });

  it('keeps serving after a client cancels its stream; what the server had read is still stored', async () => {
    const ctx = await start({ INGEST_FLUSH_INTERVAL_MS: '300' });
    const s = openBatchStream(ctx.client);
    await s.write([call('x1', T)]);
    await expect.poll(() => ctx.ingest.service.metrics.pendingBytes.get().then((g) => g.values[0]?.value ?? 0)).toBeGreaterThan(0);
    s.stream.cancel();
    expect(((await s.response.then(() => undefined, (e: grpc.ServiceError) => e)) as grpc.ServiceError).code).toBe(grpc.status.CANCELLED);
    expect(await recordCalls(ctx.client, [call('x2', T)])).toMatchObject({ accepted: '1' });
    await expect.poll(() => ids(ctx.ch)).toEqual(['x1', 'x2']);
  });
});

describe('graceful stop', () => {
  it('answers a stream that ends within the grace period normally, and one that does not UNAVAILABLE, both durable', async () => {
    const ctx = await start({ INGEST_SHUTDOWN_GRACE_MS: '1000', INGEST_FLUSH_INTERVAL_MS: '5000' });
    const finishing = openBatchStream(ctx.client);
    const lingering = openBatchStream(ctx.client);
    await finishing.write([call('g1', T), call('g2', T)]);
    await lingering.write([call('g3', T)]);
    await expect.poll(() => ctx.ingest.service.metrics.pendingBytes.get().then((g) => g.values[0]?.value ?? 0)).toBeGreaterThan(0);
    const stopped = ctx.ingest.stop();
    await new Promise((r) => setTimeout(r, 200));
    finishing.end();
    expect(await finishing.response).toMatchObject({ accepted: '2' });
    const err = await lingering.response.then(() => undefined, (e: grpc.ServiceError) => e);
    expect(err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(err?.details).toContain('the 1 calls it received are durable');
    await stopped;
    expect(await ids(ctx.ch)).toEqual(['g1', 'g2', 'g3']);
    // A new call after stop is refused: the server no longer listens.
    const late = await recordOne(ctx.client, call('g4', T)).then(() => undefined, (e: grpc.ServiceError) => e);
    expect(late?.code).toBe(grpc.status.UNAVAILABLE);
  });
});

describe('HTTP', () => {
  it('runs one read-only statement on POST /sql and answers JSONCompact', async () => {
    const ctx = await start();
    await recordCalls(ctx.client, [call('h1', T), call('h2', T + 1)]);
    const res = await fetch(`http://127.0.0.1:${ctx.ingest.httpPort}/sql`, {
      method: 'POST', body: `SELECT call_id, duration_ms FROM ${ctx.ch.table('calls')} ORDER BY call_id`,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    const body = (await res.json()) as { meta: unknown; data: unknown; rows: number };
    expect(body.meta).toEqual([{ name: 'call_id', type: 'String' }, { name: 'duration_ms', type: 'UInt32' }]);
    expect(body.data).toEqual([['h1', 90000], ['h2', 90000]]);
    expect(body.rows).toBe(2);
  });

  it('refuses writes, several statements and bad SQL with 400 and the reason; wrong method 405', async () => {
    const ctx = await start();
    const post = async (sql: string) => {
      const r = await fetch(`http://127.0.0.1:${ctx.ingest.httpPort}/sql`, { method: 'POST', body: sql });
      return { status: r.status, type: r.headers.get('content-type'), body: (await r.json()) as { error: string } };
    };
    const drop = await post(`DROP TABLE ${ctx.ch.table('calls')}`);
    expect(drop).toEqual({ status: 400, type: 'application/json', body: { error: 'sql: only SELECT, WITH … SELECT, SHOW, DESCRIBE, EXISTS and EXPLAIN are allowed, got DropQuery' } });
    expect((await post(`SELECT 1; DROP TABLE ${ctx.ch.table('calls')}`)).body.error).toMatch(/^sql: .*Multi-statements are not allowed/);
    expect((await post(`INSERT INTO ${ctx.ch.table('calls')} (call_id) VALUES ('x')`)).body.error).toMatch(/got InsertQuery$/);
    expect((await post('SELEKT 1')).status).toBe(400);
    expect((await post(`SELECT nope FROM ${ctx.ch.table('calls')}`)).body.error).toMatch(/^sql: .*nope/);
    expect((await post('')).body).toEqual({ error: 'sql: is empty' });
    expect(await queryRows(ctx.ch, `EXISTS TABLE ${ctx.ch.table('calls')}`)).toEqual([{ result: 1 }]);
    expect((await fetch(`http://127.0.0.1:${ctx.ingest.httpPort}/sql`)).status).toBe(405);
  });

  it('serves /healthz and Prometheus metrics of this instance', async () => {
    const ctx = await start();
    await recordCalls(ctx.client, [call('x1', T), call('x1', T), call('x2', T, { start: null })]);
    const health = await fetch(`http://127.0.0.1:${ctx.ingest.httpPort}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const res = await fetch(`http://127.0.0.1:${ctx.ingest.httpPort}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toContain('phonebill_ingest_events_accepted_total 1\n');
    expect(text).toContain('phonebill_ingest_events_duplicate_total 1\n');
    expect(text).toContain('phonebill_ingest_events_rejected_total{field="start",reason="is required"} 1\n');
    expect(text).toMatch(/phonebill_ingest_batch_rows_count \d+/);
    expect(text).toMatch(/phonebill_ingest_flush_seconds_bucket\{le="0.1"\} \d+/);
    expect(text).toContain('phonebill_ingest_pending_bytes 0\n');
  });
});
