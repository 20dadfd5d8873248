/** Pure parts of ingest: the rules, the TSV text, the dedup filter, the line buffer. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { millisToTimestamp } from '../../core/grpc/proto.ts';
import { validateEvent, rawTimestamp, type CallEndEvent } from '../domain/event.ts';
import { BufferPool, LineBuffer } from '../domain/line-buffer.ts';
import { SeenIds, SeenIdsLoader } from '../domain/seen-ids.ts';
import { FirstOccurrence } from '../batcher.ts';
import { appendCallLine, dateTime64Field, escapeTsv, formatDateTime64, rejectionLine } from '../domain/tsv.ts';
import type { CallRow } from '../domain/event.ts';

/** The `calls` line as a plain string: the oracle appendCallLine's bytes are checked against. */
const callLine = (r: CallRow, ingestedAt: string): string =>
  `${escapeTsv(r.callId)}\t${r.source}\t${r.target}\t${dateTime64Field(r.startMs)}\t${dateTime64Field(r.endMs)}\t${r.durationMs}\t${r.sourceCountry}\t${r.targetCountry}\t${r.callClass}\t${ingestedAt}\n`;

/** What appendCallLine writes for one row, as text. */
const appended = (r: CallRow, ingestedAt: string): string => {
  const lb = new LineBuffer(new BufferPool(1, 1 << 20, 16));
  appendCallLine(lb, r, ingestedAt);
  return lb.bytes().toString('utf8');
};

const NOW = Date.parse('2026-11-29T12:00:00Z');
const LIMITS = { maxCallSeconds: 86_400, maxFutureSeconds: 300 };
const START = NOW - 3_600_000;
const ev = (over: Partial<CallEndEvent> = {}): CallEndEvent => ({
  call_id: 'c-1',
  source_number: '+12125550100',
  target_number: '+14165550123',
  start: millisToTimestamp(START),
  end: millisToTimestamp(START + 61_500),
  ...over,
});

describe('validateEvent', () => {
  it('derives duration and classification of a valid call', () => {
    expect(validateEvent(ev(), NOW, LIMITS)).toEqual({
      ok: true,
      row: {
        callId: 'c-1', source: '+12125550100', target: '+14165550123', startMs: START, endMs: START + 61_500,
        durationMs: 61_500, sourceCountry: 'US', targetCountry: 'CA', callClass: 'cross_border',
      },
    });
  });

  it('accepts the limits themselves: 24 h exactly, 300 s ahead exactly, service codes', () => {
    expect(validateEvent(ev({ end: millisToTimestamp(START + 86_400_000) }), NOW + 86_400_000, LIMITS).ok).toBe(true);
    expect(validateEvent(ev({ start: millisToTimestamp(NOW + 300_000), end: millisToTimestamp(NOW + 300_000) }), NOW, LIMITS).ok).toBe(true);
    const r = validateEvent(ev({ target_number: '911' }), NOW, LIMITS);
    expect(r.ok && r.row.callClass).toBe('service_code');
  });

  const cases: [string, Partial<CallEndEvent>, string, string][] = [
    ['call_id missing', { call_id: '' }, 'call_id', 'is required'],
    ['call_id too long', { call_id: 'x'.repeat(129) }, 'call_id', 'must be at most 128 characters, got 129'],
    ['source malformed', { source_number: '2125550100' }, 'source_number', 'must be E.164 +1NPANXXXXXX'],
    ['source toll-free', { source_number: '+18005550100' }, 'source_number', 'a toll-free number cannot place calls'],
    ['target outside NANP', { target_number: '+442071234567' }, 'target_number', 'not a North American (NANP) number'],
    ['target missing', { target_number: '' }, 'target_number', 'is required'],
    ['start missing', { start: null }, 'start', 'is required'],
    ['end missing', { end: null }, 'end', 'is required'],
    ['start nanos out of range', { start: { seconds: String(START / 1000), nanos: 1_000_000_000 } }, 'start', 'nanos must be between 0 and 999999999, got 1000000000'],
    ['start before 1970', { start: { seconds: '-5', nanos: 0 } }, 'start', 'must not be before 1970-01-01T00:00:00Z'],
    ['end before start', { end: millisToTimestamp(START - 1) }, 'end', 'must not be before start'],
    ['call too long', { start: millisToTimestamp(NOW - 100_000_000), end: millisToTimestamp(NOW - 100_000_000 + 86_400_001) }, 'end', 'call lasts 86401 s; at most 86400 s is allowed'],
    ['start in the future', { start: millisToTimestamp(NOW + 301_000), end: millisToTimestamp(NOW + 302_000) }, 'start', 'is 301 s in the future; at most 300 s is allowed'],
    ['end in the future', { end: millisToTimestamp(NOW + 400_000) }, 'end', 'is 400 s in the future; at most 300 s is allowed'],
  ];
  it.each(cases)('rejects %s', (_name, over, field, reason) => {
    const r = validateEvent(ev(over), NOW, LIMITS);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.rejection).toEqual({ call_id: over.call_id ?? 'c-1', field, reason });
  });

  it('keeps the raw event for rejected_calls, timestamps with full nanoseconds', () => {
    const r = validateEvent(ev({ call_id: '', end: { seconds: '1764417600', nanos: 123456789 } }), NOW, LIMITS);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.raw).toEqual({ call_id: '', source_number: '+12125550100', target_number: '+14165550123', start: '2026-11-29T11:00:00.000000000Z', end: '2025-11-29T12:00:00.123456789Z' });
    expect(rawTimestamp({ seconds: '99999999999999', nanos: 0 })).toBe('seconds=99999999999999 nanos=0');
    expect(rawTimestamp(null)).toBe('');
  });
});

describe('TabSeparated text', () => {
  it('formats DateTime64(3) like toISOString, across day boundaries and the day cache', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: Date.UTC(2299, 0) }), (ms) => {
      expect(formatDateTime64(ms)).toBe(new Date(ms).toISOString().slice(0, 23).replace('T', ' '));
    }), { numRuns: 5000 });
  });

  it('writes DateTime64 as 13-digit epoch milliseconds, and as text when shorter', () => {
    expect(dateTime64Field(Date.parse('2001-09-09T01:46:40.000Z'))).toBe('1000000000000');
    expect(dateTime64Field(Date.parse('2001-09-09T01:46:39.999Z'))).toBe('2001-09-09 01:46:39.999');
    expect(dateTime64Field(0)).toBe('1970-01-01 00:00:00.000');
    expect(dateTime64Field(Date.parse('2286-11-20T17:46:40.000Z'))).toBe('2286-11-20 17:46:40.000');
  });

  it('escapes tab, newline, carriage return, backslash and NUL, and nothing else', () => {
    expect(escapeTsv('a\tb\nc\rd\\e\0f')).toBe('a\\tb\\nc\\rd\\\\e\\0f');
    expect(escapeTsv('plain-id é ✓')).toBe('plain-id é ✓');
    fc.assert(fc.property(fc.string(), (s) => {
      expect(escapeTsv(s)).not.toMatch(/[\t\n\r\0]/);
    }));
  });

  it('writes one line per row in column order', () => {
    const r = validateEvent(ev({ call_id: 'a\tb' }), NOW, LIMITS);
    if (!r.ok) throw new Error('valid');
    expect(appended(r.row, '1764417600000')).toBe(
      `a\\tb\t+12125550100\t+14165550123\t${START}\t${START + 61_500}\t61500\tUS\tCA\tcross_border\t1764417600000\n`);
    const bad = validateEvent(ev({ source_number: 'x\ny' }), NOW, LIMITS);
    if (bad.ok) throw new Error('invalid');
    expect(rejectionLine(bad.rejection, bad.raw, 'T')).toBe(
      'T\tc-1\tx\\ny\t+14165550123\t2026-11-29T11:00:00.000000000Z\t2026-11-29T11:01:01.500000000Z\tsource_number\tmust be E.164 +1NPANXXXXXX\n');
  });
});

describe('appendCallLine', () => {
  it('writes exactly the bytes of the plain-string line, for any id and any instant', () => {
    const row = fc.record({
      callId: fc.string({ unit: fc.constantFrom('a', '7', '-', '\t', '\n', '\r', '\\', '\0', 'é', '✓', '😀'), minLength: 1, maxLength: 40 }),
      startMs: fc.integer({ min: 0, max: 9_999_999_999_999 }),
      durationMs: fc.integer({ min: 0, max: 86_400_000 }),
    });
    fc.assert(fc.property(fc.array(row, { minLength: 1, maxLength: 20 }), (rows) => {
      const lb = new LineBuffer(new BufferPool(1, 1 << 20, 16));
      const want: Buffer[] = [];
      for (const x of rows) {
        const r = { callId: x.callId, source: '+12125550100', target: '911', startMs: x.startMs, endMs: x.startMs + x.durationMs, durationMs: x.durationMs, sourceCountry: 'US', targetCountry: '', callClass: 'service_code' } as const;
        const at = appendCallLine(lb, r, '1764417600000');
        expect(at).toBe(want.reduce((n, b) => n + b.length, 0));
        want.push(Buffer.from(callLine(r, '1764417600000'), 'utf8'));
      }
      expect(lb.bytes().equals(Buffer.concat(want))).toBe(true);
    }), { numRuns: 500 });
  });
});

describe('FirstOccurrence', () => {
  it('finds exactly the repeated ids, even when different ids share both hashes', () => {
    const ids = ['a', 'b', 'a', 'c', 'b', 'd'];
    // b, c and d collide completely; only the id comparison tells them apart.
    const hashes = new Uint32Array([1, 2, 7, 7, 1, 2, 7, 7, 7, 7, 7, 7]);
    const f = new FirstOccurrence(ids.length);
    expect(ids.map((_, i) => f.isFirst(i, hashes, ids))).toEqual([true, true, false, true, false, true]);
  });
});

describe('SeenIds', () => {
  const DAY = 86_400_000;

  it('answers unknown until the window is covered, then never absent for an added id', () => {
    const seen = new SeenIds(30);
    expect(seen.check('a', NOW)).toBe('unknown');
    seen.add('a', NOW);
    seen.startCovering(NOW);
    fc.assert(fc.property(fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 40 }), fc.integer({ min: NOW - 30 * DAY, max: NOW + DAY })), { maxLength: 200 }), (ids) => {
      for (const [id, at] of ids) seen.add(id, at);
      for (const [id, at] of ids) expect(seen.check(id, at)).toBe('maybe');
    }));
  });

  it('is rarely wrong about new ids (false positives well under 1 in 1,000), across growing filters', () => {
    const seen = new SeenIds(30);
    seen.startCovering(NOW);
    for (let i = 0; i < 300_000; i++) seen.add(`call-${i}`, NOW); // past the first filter's 65,536: a chain of three
    let maybe = 0;
    for (let i = 300_000; i < 400_000; i++) if (seen.check(`call-${i}`, NOW) === 'maybe') maybe++;
    expect(maybe).toBeLessThan(100);
    for (let i = 0; i < 300_000; i += 997) expect(seen.check(`call-${i}`, NOW)).toBe('maybe');
  });

  it('loads ids from TabSeparated bytes split anywhere, hashing them exactly like add()', () => {
    fc.assert(fc.property(
      fc.array(fc.tuple(fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }), fc.integer({ min: NOW - 20 * DAY, max: NOW })), { minLength: 1, maxLength: 40 }),
      fc.array(fc.nat(), { maxLength: 6 }),
      (ids, cuts) => {
        const seen = new SeenIds(30);
        const loader = new SeenIdsLoader(seen);
        const bytes = Buffer.from(ids.map(([id, at]) => `${escapeTsv(id)}\t${at}\n`).join(''), 'utf8');
        const at = [0, ...cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b), bytes.length];
        for (let i = 1; i < at.length; i++) loader.push(bytes.subarray(at[i - 1], at[i]));
        seen.startCovering(NOW);
        expect(loader.count).toBe(ids.length);
        for (const [id, t] of ids) expect(seen.check(id, t)).toBe('maybe');
      },
    ));
  });

  it('answers unknown for days before the window and forgets days that leave it', () => {
    const seen = new SeenIds(2);
    seen.startCovering(NOW);
    expect(seen.check('old', NOW - 3 * DAY)).toBe('unknown');
    seen.add('x', NOW - DAY);
    expect(seen.check('x', NOW - DAY)).toBe('maybe');
    const before = seen.bytes();
    seen.evict(NOW + 2 * DAY);
    expect(seen.check('x', NOW - DAY)).toBe('unknown');
    expect(seen.bytes()).toBeLessThan(before);
    expect(seen.check('y', NOW + 2 * DAY)).toBe('absent');
  });
});

describe('LineBuffer', () => {
  it('keeps exactly the selected lines, in order, through growth', () => {
    const pool = new BufferPool(2, 1 << 20, 16);
    fc.assert(fc.property(fc.array(fc.tuple(fc.string({ maxLength: 300 }), fc.boolean()), { maxLength: 100 }), (lines) => {
      const b = new LineBuffer(pool);
      const starts = lines.map(([s]) => b.write(`${s}\n`));
      expect(b.bytes().toString('utf8')).toBe(lines.map(([s]) => `${s}\n`).join(''));
      expect(b.select(starts, (i) => lines[i]![1]).toString('utf8')).toBe(lines.filter(([, k]) => k).map(([s]) => `${s}\n`).join(''));
      b.release();
    }));
  });
});
