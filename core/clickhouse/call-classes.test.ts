/**
 * The calls table's class column against the codes the rating reads, and the
 * classes the classifier and the tariff know.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { freshClickHouse } from '../../test/helpers.ts';
import { CALL_CLASSES } from '../../billing/domain/index.ts';
import type { ClickHouse } from './client.ts';
import { CALL_CLASS_CODES, CALL_CLASS_TYPE } from './call-classes.ts';

let ch: ClickHouse | undefined;
afterAll(async () => { await ch?.close(); });

describe('calls.call_class', () => {
  it('is the Enum8 of CALL_CLASS_CODES, one code per class the tariff rates, and still reads and filters as text', async () => {
    ch = await freshClickHouse('cls');
    const [{ type }] = await (await ch.client.query({
      query: `SELECT type FROM system.columns WHERE database = {db:String} AND table = 'calls' AND name = 'call_class'`,
      query_params: { db: ch.database }, format: 'JSONEachRow',
    })).json<{ type: string }>();
    expect(type).toBe(CALL_CLASS_TYPE);
    expect(Object.keys(CALL_CLASS_CODES).sort()).toEqual([...CALL_CLASSES].sort());
    expect(new Set(Object.values(CALL_CLASS_CODES)).size).toBe(CALL_CLASSES.length);
    // Codes in the names' order: ORDER BY call_class orders as it did for the text.
    const byCode = Object.entries(CALL_CLASS_CODES).sort((a, b) => a[1] - b[1]).map(([name]) => name);
    expect(byCode).toEqual([...byCode].sort());

    await ch.client.insert({
      table: ch.table('calls'), format: 'JSONEachRow',
      values: CALL_CLASSES.map((c, i) => ({
        call_id: `c${i}`, source_number: '+12025550100', target_number: '+12025550101', started_at: '2024-01-01 00:00:00.000', ended_at: '2024-01-01 00:01:00.000',
        duration_ms: 60000, source_country: 'US', target_country: 'US', call_class: c, ingested_at: '2024-01-01 00:01:00.000',
      })),
    });
    const rows = await (await ch.client.query({
      query: `SELECT call_class, toUInt8(call_class) AS code FROM ${ch.table('calls')} WHERE call_class != 'domestic' ORDER BY call_id`, format: 'JSONEachRow',
    })).json<{ call_class: string; code: number }>();
    expect(rows).toEqual(CALL_CLASSES.filter((c) => c !== 'domestic').map((c) => ({ call_class: c, code: CALL_CLASS_CODES[c] })));
  });
});
