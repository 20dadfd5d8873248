/**
 * Bulk import of subscribers from CSV (header
 * `phone_number,subscription_date,time_zone[,plan]`). Good rows are kept,
 * bad rows reported with line, column and reason; numbers already present
 * (in the database or earlier in the file) count as duplicates, so running
 * the same import twice is harmless. Rows are written in batches of one
 * multi-row INSERT … ON CONFLICT DO NOTHING.
 */
import type { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import { invalid } from '../../core/errors.ts';
import type { NewSubscriber, SubscriberRepository } from '../adapters/postgres/index.ts';
import { defaultSubscriberRules, validateSubscriber, type SubscriberField, type SubscriberRules } from './validate.ts';

export const CSV_COLUMNS = { phone_number: 'phoneNumber', subscription_date: 'subscriptionDate', time_zone: 'timeZone', plan: 'plan' } as const;
type Column = keyof typeof CSV_COLUMNS;
const REQUIRED: Column[] = ['phone_number', 'subscription_date', 'time_zone'];
const COLUMN_OF: Record<SubscriberField, Column> = { phoneNumber: 'phone_number', subscriptionDate: 'subscription_date', timeZone: 'time_zone', plan: 'plan' };

export interface ImportProblem {
  line: number;
  /** The CSV column at fault, or 'row' for a malformed row. */
  field: string;
  reason: string;
  kind: 'invalid' | 'duplicate';
}

export interface ImportSummary {
  /** Data rows read (the header excluded). */
  rows: number;
  added: number;
  duplicates: number;
  invalid: number;
  /** Problems in line order, at most maxProblems of them. */
  problems: ImportProblem[];
  /** Problems left out of `problems` beyond maxProblems. */
  problemsOmitted: number;
}

export interface ImportOptions {
  repo: SubscriberRepository;
  rules?: SubscriberRules;
  batchSize?: number;
  maxProblems?: number;
  /** Called after each batch is written, with the source bytes consumed so far. */
  onProgress?: (p: { rows: number; bytes: number; added: number }) => void;
}

export async function importSubscribersCsv(source: Readable, opts: ImportOptions): Promise<ImportSummary> {
  const rules = opts.rules ?? defaultSubscriberRules();
  const batchSize = opts.batchSize ?? 1000;
  const maxProblems = opts.maxProblems ?? 1000;
  const summary: ImportSummary = { rows: 0, added: 0, duplicates: 0, invalid: 0, problems: [], problemsOmitted: 0 };
  // Counts rows (a row with two bad fields is one invalid row) and keeps each problem.
  const report = (p: ImportProblem, firstOfRow = true) => {
    if (firstOfRow) { if (p.kind === 'invalid') summary.invalid++; else summary.duplicates++; }
    if (summary.problems.length < maxProblems) summary.problems.push(p); else summary.problemsOmitted++;
  };

  const firstLine = new Map<string, number>();
  let batch: { line: number; value: NewSubscriber }[] = [];
  let bytes = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const inserted = await opts.repo.insertMany(batch.map((b) => b.value));
    const dupes: ImportProblem[] = [];
    for (const b of batch) {
      if (inserted.has(b.value.phoneNumber)) summary.added++;
      else dupes.push({ line: b.line, field: 'phone_number', reason: `${b.value.phoneNumber} is already a subscriber`, kind: 'duplicate' });
    }
    // Keep problems in line order even though duplicates are known only after the batch.
    for (const d of dupes) report(d);
    summary.problems.sort((a, b) => a.line - b.line);
    batch = [];
    opts.onProgress?.({ rows: summary.rows, bytes, added: summary.added });
  };

  const parser = source.pipe(parse({ info: true, bom: true, trim: true, skip_empty_lines: true, relax_column_count: true }));
  let header: Column[] | undefined;
  let requiredWidth = 0;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number; bytes: number } }>) {
      bytes = info.bytes;
      if (!header) {
        header = checkHeader(record);
        requiredWidth = Math.max(...REQUIRED.map((c) => header!.indexOf(c))) + 1;
        continue;
      }
      summary.rows++;
      const line = info.lines;
      // A trailing optional column (plan) may be left off; anything else must match the header.
      if (record.length > header.length || record.length < requiredWidth) {
        report({ line, field: 'row', reason: `expected ${header.length} columns, got ${record.length}`, kind: 'invalid' });
        continue;
      }
      const input: Record<string, string> = {};
      header.forEach((col, i) => { input[CSV_COLUMNS[col]] = record[i] ?? ''; });
      const v = validateSubscriber(input, rules);
      if (!v.ok) {
        v.problems.forEach((p, i) => report({ line, field: COLUMN_OF[p.field], reason: p.reason, kind: 'invalid' }, i === 0));
        continue;
      }
      const seen = firstLine.get(v.value.phoneNumber);
      if (seen !== undefined) {
        report({ line, field: 'phone_number', reason: `${v.value.phoneNumber} repeats line ${seen}`, kind: 'duplicate' });
        continue;
      }
      firstLine.set(v.value.phoneNumber, line);
      batch.push({ line, value: v.value });
      if (batch.length >= batchSize) await flush();
    }
  } catch (e) {
    if ((e as { code?: string }).code?.startsWith('CSV_')) throw invalid('file', `not valid CSV: ${(e as Error).message}`, 'INVALID_CSV');
    throw e;
  }
  if (!header) throw invalid('file', `is empty: expected the header ${Object.keys(CSV_COLUMNS).join(',')}`, 'INVALID_CSV');
  await flush();
  summary.problems.sort((a, b) => a.line - b.line);
  return summary;
}

function checkHeader(record: string[]): Column[] {
  const cols = record.map((c) => c.toLowerCase());
  const unknown = cols.filter((c) => !(c in CSV_COLUMNS));
  if (unknown.length) throw invalid('header', `unknown column ${unknown.map((c) => JSON.stringify(c)).join(', ')}; expected ${Object.keys(CSV_COLUMNS).join(',')} (plan optional)`, 'INVALID_CSV');
  const missing = REQUIRED.filter((c) => !cols.includes(c));
  if (missing.length) throw invalid('header', `missing column ${missing.join(', ')}; expected ${Object.keys(CSV_COLUMNS).join(',')} (plan optional)`, 'INVALID_CSV');
  const repeated = cols.filter((c, i) => cols.indexOf(c) !== i);
  if (repeated.length) throw invalid('header', `column ${repeated[0]} appears twice`, 'INVALID_CSV');
  return cols as Column[];
}

/** The human summary printed by the CLI: one line per problem, then the counts. */
export function formatImportSummary(s: ImportSummary, file: string): string[] {
  const out = s.problems.map((p) => `${file}:${p.line}: ${p.field}: ${p.reason}${p.kind === 'duplicate' ? ' (skipped)' : ''}`);
  if (s.problemsOmitted) out.push(`… and ${s.problemsOmitted} more problems`);
  const n = (k: number, one: string, many = `${one}s`) => `${k} ${k === 1 ? one : many}`;
  out.push(`${n(s.rows, 'row')}: ${s.added} added, ${n(s.duplicates, 'duplicate')}, ${s.invalid} invalid`);
  return out;
}
