/**
 * The benchmark's parts: shards of the same rows for every process, the
 * profile summary, and a tiny end-to-end run whose last line is the JSON
 * object every benchmark must print.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers.ts';
import { REPO_ROOT } from '../../scripts/lib/ingest-child.ts';
import { shardBatches, toRow, toWire, type DatasetSpec } from './dataset.ts';
import { summarizeProfile } from './profile.ts';

const spec: DatasetSpec = { seed: 3, subscribers: 300, callsPerShard: 2000, prefix: 't', asOf: Date.parse('2026-11-15T00:00:00Z') };
const all = (shard: number) => [...shardBatches(spec, shard, 500)].flat();

describe('benchmark data', () => {
  it('gives each shard its own valid calls among the same subscribers, identical in every process', () => {
    const a = all(0), b = all(1);
    expect(a).toHaveLength(2000);
    expect(all(0)).toEqual(a);
    expect(a.every((e) => e.kind === 'call')).toBe(true);
    const ids = new Set(a.map((e) => e.call_id));
    expect(b.some((e) => ids.has(e.call_id))).toBe(false);
    const sources = new Set(a.map((e) => e.source_number));
    expect(b.filter((e) => sources.has(e.source_number)).length).toBeGreaterThan(1000);
  });

  it('turns a call into the wire event and the stored row', () => {
    const e = { call_id: 't0-1', source_number: '+14165550123', target_number: '+12125550188', startMs: Date.parse('2026-10-14T22:03:07.250Z'), endMs: Date.parse('2026-10-14T22:05:07.500Z'), kind: 'call', target: 'cross_border', zone: 'America/Toronto' } as const;
    expect(toWire(e)).toEqual({ call_id: 't0-1', source_number: '+14165550123', target_number: '+12125550188', start: { seconds: '1792015387', nanos: 250_000_000 }, end: { seconds: '1792015507', nanos: 500_000_000 } });
    expect(toRow(e, Date.parse('2026-11-01T00:00:00Z'))).toEqual({
      call_id: 't0-1', source_number: '+14165550123', target_number: '+12125550188',
      started_at: '2026-10-14 22:03:07.250', ended_at: '2026-10-14 22:05:07.500', duration_ms: 120250,
      source_country: 'CA', target_country: 'US', call_class: 'cross_border', ingested_at: '2026-11-01 00:00:00.000',
    });
  });
});

describe('profile summary', () => {
  it('adds self time by owner and by function, leaving idle time out', () => {
    const file = path.join(tempDir('phonebill-prof-'), 'p.cpuprofile');
    const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 9 });
    fs.writeFileSync(file, JSON.stringify({
      nodes: [
        { id: 1, callFrame: frame('(idle)', '') },
        { id: 2, callFrame: frame('validateEvent', 'file:///work/main/ingest/domain/event.ts') },
        { id: 3, callFrame: frame('decode', 'file:///work/main/node_modules/protobufjs/src/reader.js') },
        { id: 4, callFrame: frame('(garbage collector)', '') },
      ],
      samples: [1, 2, 2, 3, 4, 2],
      timeDeltas: [5000, 1000, 1000, 1000, 1000, 1000],
    }));
    expect(summarizeProfile(file, 2)).toEqual([
      '  busy 0.0 s of the main thread, idle 0.0 s; self time by owner:',
      '     60.0 %  ingest/domain',
      '     20.0 %  protobufjs',
      '     20.0 %  (garbage collector)',
      '  by function:',
      '     60.0 %  validateEvent ingest/domain/event.ts:10',
      '     20.0 %  decode protobufjs/src/reader.js:10',
    ]);
  });
});

describe('npm run bench -- ingest', () => {
  it('runs end to end on a tiny load and ends with the JSON line', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/run.ts', 'ingest', '--calls', '3000', '--unary-calls', '1000'], { cwd: REPO_ROOT, timeout: 120_000 });
    const last = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(Object.keys(last).slice(0, 6)).toEqual(['bench', 'unit', 'value', 'baseline', 'ratio', 'recordCalls']);
    expect(last).toMatchObject({ bench: 'ingest', unit: 'calls/s', calls: 3000, recordCallsCalls: 1000, quick: false });
    for (const k of ['value', 'baseline', 'ratio', 'recordCalls', 'peakRssMiB']) expect(last[k], k).toBeGreaterThan(0);
    expect(last.ratio).toBeCloseTo((last.value as number) / (last.baseline as number), 2);
  }, 120_000);
});
