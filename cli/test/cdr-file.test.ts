import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers.ts';
import { CdrFileError, formatFromPath, readCdrFile, type CdrLine } from '../lib/cdr-file.ts';
import { parseInstant } from '../lib/rfc3339.ts';
import { formatTable } from '../lib/table.ts';
import { createTraffic, lastFullMonth } from '../../scripts/lib/traffic.ts';
import { eventLine } from '../../scripts/lib/write-sample.ts';

async function read(name: string, text: string, format: 'csv' | 'ndjson'): Promise<CdrLine[]> {
  const file = path.join(tempDir('phonebill-cdr-'), name);
  fs.writeFileSync(file, text);
  const out: CdrLine[] = [];
  for await (const l of readCdrFile(file, format)) out.push(l);
  return out;
}

const ts = (iso: string) => { const ms = Date.parse(iso); return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 }; };

describe('RFC 3339 instants', () => {
  it.each([
    ['2026-10-14T18:03:07-04:00', '2026-10-14T22:03:07.000Z'],
    ['2026-10-14T18:03:07.250-04:00', '2026-10-14T22:03:07.250Z'],
    ['2026-10-14 22:03:07Z', '2026-10-14T22:03:07.000Z'],
    ['2026-10-14t19:33:07.123456789-02:30', '2026-10-14T22:03:07.123Z'],
    ['2026-10-14T12:03:07+00:00', '2026-10-14T12:03:07.000Z'],
    ['2024-02-29T00:00:00Z', '2024-02-29T00:00:00.000Z'],
  ])('reads %s', (s, iso) => {
    expect(parseInstant(s)).toEqual({ ok: true, ms: Date.parse(iso) });
  });

  it.each([
    ['', 'missing'],
    ['2026-10-14T18:03:07', '"2026-10-14T18:03:07" has no UTC offset (add Z or ±hh:mm)'],
    ['2026-13-01T00:00:00Z', '"2026-13-01T00:00:00Z" is not a real date and time'],
    ['2026-02-29T00:00:00Z', '"2026-02-29T00:00:00Z" is not a real date and time'],
    ['2026-10-14T24:00:00Z', '"2026-10-14T24:00:00Z" is not a real date and time'],
    ['1760000000', '"1760000000" is not an RFC 3339 instant such as 2026-10-14T18:03:07-04:00'],
    ['2026-10-14', '"2026-10-14" is not an RFC 3339 instant such as 2026-10-14T18:03:07-04:00'],
  ])('refuses %j', (s, reason) => {
    expect(parseInstant(s)).toEqual({ ok: false, reason });
  });
});

describe('bulk-load files', () => {
  it('guesses the format from the extension', () => {
    expect(formatFromPath('a/calls.CSV')).toBe('csv');
    expect(formatFromPath('calls.ndjson')).toBe('ndjson');
    expect(formatFromPath('calls.jsonl')).toBe('ndjson');
    expect(formatFromPath('calls.txt')).toBeUndefined();
  });

  it('reads CSV lines with their line numbers, keeping unreadable lines and bad timestamps as events to send', async () => {
    const lines = await read('c.csv', [
      'call_id,source_number,target_number,start,end',
      'a1,+12125550123,+14165550123,2026-10-14T18:03:07-04:00,2026-10-14T18:05:07-04:00',
      '',
      '"a2","+12125550123","911",2026-10-14T22:00:00Z,2026-10-14T22:00:30.5Z',
      'a3,+12125550123,+14165550123,yesterday,2026-10-14T22:00:30Z',
      'a4,+12125550123,only-four-fields',
      'a5,+12125550123,+14165550123,2026-10-14T22:00:00Z,',
    ].join('\r\n') + '\r\n', 'csv');
    expect(lines).toEqual([
      { line: 2, event: { call_id: 'a1', source_number: '+12125550123', target_number: '+14165550123', start: ts('2026-10-14T22:03:07Z'), end: ts('2026-10-14T22:05:07Z') } },
      { line: 4, event: { call_id: 'a2', source_number: '+12125550123', target_number: '911', start: ts('2026-10-14T22:00:00Z'), end: ts('2026-10-14T22:00:30.500Z') } },
      {
        line: 5,
        event: { call_id: 'a3', source_number: '+12125550123', target_number: '+14165550123', start: null, end: ts('2026-10-14T22:00:30Z') },
        problem: { field: 'start', reason: '"yesterday" is not an RFC 3339 instant such as 2026-10-14T18:03:07-04:00' },
      },
      {
        line: 6,
        event: { call_id: '', source_number: 'a4,+12125550123,only-four-fields', target_number: '', start: null, end: null },
        problem: { field: 'line', reason: expect.stringContaining('unreadable CSV: Invalid Record Length') },
      },
      {
        line: 7,
        event: { call_id: 'a5', source_number: '+12125550123', target_number: '+14165550123', start: ts('2026-10-14T22:00:00Z'), end: null },
        problem: { field: 'end', reason: 'missing' },
      },
    ]);
  });

  it('refuses a CSV without the expected header, naming the missing columns', async () => {
    await expect(read('h.csv', 'id,from,to,start,end\nx,+1,+1,a,b\n', 'csv')).rejects.toThrow(CdrFileError);
    await expect(read('h.csv', 'id,from,to,start,end\nx,+1,+1,a,b\n', 'csv')).rejects.toThrow(/missing: call_id, source_number, target_number/);
  });

  it('reads NDJSON, with numbers as text and unreadable lines kept raw', async () => {
    const lines = await read('c.ndjson', [
      JSON.stringify({ call_id: 'n1', source_number: '+12125550123', target_number: '+14165550123', start: '2026-10-14T22:00:00Z', end: '2026-10-14T22:01:00Z' }),
      '   ',
      '{"call_id": 42, "source_number": "+12125550123", "target_number": "611", "start": "2026-10-14T22:00:00Z", "end": "2026-10-14T22:01:00Z"}',
      '{"call_id": "n3", "source_number": "+12125550123"',
      '["not", "an", "object"]',
      '{"call_id": "n5", "source_number": {"x":1}, "target_number": "611", "start": "2026-10-14T22:00:00Z", "end": "2026-10-14T22:01:00"}',
    ].join('\n'), 'ndjson');
    expect(lines.map((l) => [l.line, l.event.call_id, l.event.source_number, l.problem?.field, l.problem?.reason])).toEqual([
      [1, 'n1', '+12125550123', undefined, undefined],
      [3, '42', '+12125550123', undefined, undefined],
      [4, '', '{"call_id": "n3", "source_number": "+12125550123"', 'line', expect.stringMatching(/^not JSON: /)],
      [5, '', '["not", "an", "object"]', 'line', 'not a JSON object'],
      [6, 'n5', '', 'source_number', 'must be a string, got object'],
    ]);
    expect(lines[0]!.event.end).toEqual(ts('2026-10-14T22:01:00Z'));
    expect(lines[4]!.event.end).toBeNull();
  });
});

describe('generated sample files', () => {
  it.each(['csv', 'ndjson'] as const)('read back (%s) as exactly the generated events, local offsets included', async (format) => {
    const m = lastFullMonth(Date.parse('2026-11-20T00:00:00Z'));
    const tr = createTraffic({ seed: 5, subscribers: 50, calls: 400, from: m.from, to: m.to, duplicateRate: 0.05, invalidRate: 0.05 });
    const events = [...tr.batches()].flat();
    const text = (format === 'csv' ? 'call_id,source_number,target_number,start,end\n' : '') + events.map((e) => eventLine(e, format)).join('\n') + '\n';
    const lines = await read(`s.${format}`, text, format);
    const back = (ms: number) => { const t = { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 }; return t; };
    expect(lines.map((l) => l.event)).toEqual(events.map((e) => ({ call_id: e.call_id, source_number: e.source_number, target_number: e.target_number, start: back(e.startMs), end: back(e.endMs) })));
    expect(lines.filter((l) => l.problem)).toEqual([]);
    expect(lines.at(-1)!.line).toBe(format === 'csv' ? events.length + 1 : events.length);
  });
});

describe('text tables', () => {
  it('aligns columns, right-aligns numbers and counts rows', () => {
    expect(formatTable(
      [{ name: 'call_class', type: 'LowCardinality(String)' }, { name: 'calls', type: 'UInt64' }, { name: 'minutes', type: 'Float64' }],
      [['domestic', '790', 1234.5], ['service_code', '25', null]],
    )).toBe([
      'call_class    calls  minutes',
      '------------  -----  -------',
      'domestic        790   1234.5',
      'service_code     25     NULL',
      '2 rows',
    ].join('\n'));
    expect(formatTable([{ name: 'n', type: 'UInt8' }], [[1]]).split('\n').at(-1)).toBe('1 row');
  });
});
