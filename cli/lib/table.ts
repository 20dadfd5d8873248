/** Plain aligned text tables for terminals and logs (no colours: output is often piped). */

export interface Column { name: string; type: string }

const NUMERIC = /^(Nullable\()?(LowCardinality\()?(U?Int\d+|Float\d+|Decimal.*)\)?\)?$/;

export function cellText(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/** Column names, a rule, the rows (numbers right-aligned), then "N rows". */
export function formatTable(columns: readonly Column[], rows: readonly (readonly unknown[])[], opts: { maxWidth?: number } = {}): string {
  const max = opts.maxWidth ?? 80;
  const clip = (s: string) => (s.length > max ? `${s.slice(0, max - 1)}…` : s);
  const text = rows.map((r) => r.map((v) => clip(cellText(v).replace(/[\r\n\t]/g, ' '))));
  const right = columns.map((c) => NUMERIC.test(c.type));
  const width = columns.map((c, i) => Math.max(c.name.length, ...text.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells.map((s, i) => (right[i] ? s.padStart(width[i]!) : s.padEnd(width[i]!))).join('  ').trimEnd();
  const out = [line(columns.map((c) => c.name)), width.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of text) out.push(line(r));
  out.push(`${rows.length} ${rows.length === 1 ? 'row' : 'rows'}`);
  return out.join('\n');
}

/** 1234567 → "1,234,567". */
export const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
