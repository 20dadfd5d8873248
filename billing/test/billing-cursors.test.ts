/**
 * The cursor move of the billing run's store, against a real PostgreSQL:
 * cursors are placed, move forward and never back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createBillingRunStore } from '../adapters/postgres/billing-runs.ts';
import { freshPostgres, type FreshPostgres } from '../../test/pg.ts';
import { insertSubscriber } from './pg-fixtures.ts';

let db: FreshPostgres | undefined;
afterEach(async () => { await db?.close(); db = undefined; });

const at = (iso: string) => Date.parse(iso);

describe('billing cursors', () => {
  it('places a new subscriber\'s cursor, moves cursors forward, never back, and keeps the last watermark when none is given', async () => {
    db = await freshPostgres();
    const store = createBillingRunStore(db.pool);
    const [a, b, c] = await Promise.all(['+12025550100', '+12025550101', '+12025550102'].map((phoneNumber) => insertSubscriber(db!.pool, { phoneNumber })));
    const read = async () => (await db!.pool.query(
      `SELECT subscriber_id AS id, next_period_index AS idx, next_period_end AS end, last_watermark AS wm FROM billing_cursors ORDER BY next_period_end, subscriber_id`)).rows
      .map((r) => ({ id: r.id, idx: r.idx, end: r.end instanceof Date ? r.end.toISOString() : String(r.end), wm: r.wm?.toISOString() ?? null }));
    // Every subscriber has a cursor from its creation (0032), not placed yet.
    expect(await read()).toEqual([a, b, c].sort().map((id) => ({ id, idx: 0, end: '-Infinity', wm: null })));


    await store.writeCursors([
      { subscriberId: a!, nextPeriodIndex: 2, nextPeriodEndMs: at('2024-03-15T04:00:00Z'), lastWatermarkMs: at('2024-02-15T06:00:00Z') },
      { subscriberId: b!, nextPeriodIndex: 0, nextPeriodEndMs: at('2024-04-15T04:00:00Z'), lastWatermarkMs: null },
    ]);
    expect(await read()).toEqual([
      { id: c, idx: 0, end: '-Infinity', wm: null },
      { id: a, idx: 2, end: '2024-03-15T04:00:00.000Z', wm: '2024-02-15T06:00:00.000Z' },
      { id: b, idx: 0, end: '2024-04-15T04:00:00.000Z', wm: null },
    ]);

    await store.writeCursors([
      // Stale: behind the stored cursor, so it changes nothing.
      { subscriberId: a!, nextPeriodIndex: 1, nextPeriodEndMs: at('2024-02-15T05:00:00Z'), lastWatermarkMs: at('2024-01-15T06:00:00Z') },
      // Forward, no watermark: the stored one stays.
      { subscriberId: b!, nextPeriodIndex: 1, nextPeriodEndMs: at('2024-05-15T04:00:00Z'), lastWatermarkMs: null },
      { subscriberId: c!, nextPeriodIndex: 0, nextPeriodEndMs: at('2024-06-15T04:00:00Z'), lastWatermarkMs: null },
    ]);
    await store.writeCursors([{ subscriberId: a!, nextPeriodIndex: 3, nextPeriodEndMs: at('2024-04-15T04:00:00Z'), lastWatermarkMs: null }]);
    expect(await read()).toEqual([
      { id: a, idx: 3, end: '2024-04-15T04:00:00.000Z', wm: '2024-02-15T06:00:00.000Z' },
      { id: b, idx: 1, end: '2024-05-15T04:00:00.000Z', wm: null },
      { id: c, idx: 0, end: '2024-06-15T04:00:00.000Z', wm: null },
    ]);
  });

  it('moves many cursors to their destinations at once; in one destination a stale cursor stays and a missing one is created', async () => {
    db = await freshPostgres();
    const store = createBillingRunStore(db.pool);
    const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => insertSubscriber(db!.pool, { phoneNumber: `+1202555011${i}` })));
    // A cursor ahead of where this write would put it, and one missing (made so by hand: the schema refuses deleting one).
    await store.writeCursors([{ subscriberId: ids[1]!, nextPeriodIndex: 5, nextPeriodEndMs: at('2024-08-15T04:00:00Z'), lastWatermarkMs: at('2024-07-15T06:00:00Z') }]);
    await db.pool.query('ALTER TABLE billing_cursors DISABLE TRIGGER billing_cursors_no_delete');
    await db.pool.query('DELETE FROM billing_cursors WHERE subscriber_id = $1', [ids[2]]);
    await db.pool.query('ALTER TABLE billing_cursors ENABLE TRIGGER billing_cursors_no_delete');
    const w = at('2024-03-15T06:00:00Z');
    await store.writeCursors([
      ...[0, 1, 2].map((i) => ({ subscriberId: ids[i]!, nextPeriodIndex: 2, nextPeriodEndMs: at('2024-04-15T04:00:00Z'), lastWatermarkMs: w })),
      ...[3, 4].map((i) => ({ subscriberId: ids[i]!, nextPeriodIndex: 2, nextPeriodEndMs: at('2024-04-15T05:00:00Z'), lastWatermarkMs: w })),
      { subscriberId: ids[5]!, nextPeriodIndex: 1, nextPeriodEndMs: at('2024-04-15T04:00:00Z'), lastWatermarkMs: null },
    ]);
    const { rows } = await db.pool.query(`SELECT subscriber_id AS id, next_period_index AS idx, next_period_end AS end, last_watermark AS wm FROM billing_cursors`);
    const byId = new Map(rows.map((r) => [r.id, { idx: r.idx, end: (r.end as Date).toISOString(), wm: (r.wm as Date | null)?.toISOString() ?? null }]));
    expect(ids.map((id) => byId.get(id))).toEqual([
      { idx: 2, end: '2024-04-15T04:00:00.000Z', wm: '2024-03-15T06:00:00.000Z' },
      { idx: 5, end: '2024-08-15T04:00:00.000Z', wm: '2024-07-15T06:00:00.000Z' },
      { idx: 2, end: '2024-04-15T04:00:00.000Z', wm: '2024-03-15T06:00:00.000Z' },
      { idx: 2, end: '2024-04-15T05:00:00.000Z', wm: '2024-03-15T06:00:00.000Z' },
      { idx: 2, end: '2024-04-15T05:00:00.000Z', wm: '2024-03-15T06:00:00.000Z' },
      { idx: 1, end: '2024-04-15T04:00:00.000Z', wm: null },
    ]);
  });

  it('refuses ids that are not UUIDs before sending anything, so none can pass as two (or be quoted) in the array literal', async () => {
    db = await freshPostgres();
    const store = createBillingRunStore(db.pool);
    const id = await insertSubscriber(db.pool, { phoneNumber: '+12025550120' });
    const move = (subscriberId: string) => ({ subscriberId, nextPeriodIndex: 1, nextPeriodEndMs: at('2024-04-15T04:00:00Z'), lastWatermarkMs: null });
    // 36 characters with a comma: two elements of the literal, were it not refused.
    const split = `${id!.slice(0, 17)},${id!.slice(18)}`;
    for (const bad of [split, `"${id!.slice(1)}`, `${id}x`, `\\${id!.slice(1)}`]) {
      await expect(store.writeCursors([move(id!), move(bad)])).rejects.toThrow(/not a UUID/);
    }
    const { rows } = await db.pool.query('SELECT next_period_index AS idx FROM billing_cursors WHERE subscriber_id = $1', [id]);
    expect(rows).toEqual([{ idx: 0 }]);
    await store.writeCursors([move(id!.toUpperCase())]);
    expect((await db.pool.query('SELECT next_period_index AS idx FROM billing_cursors WHERE subscriber_id = $1', [id])).rows).toEqual([{ idx: 1 }]);
  });
});
