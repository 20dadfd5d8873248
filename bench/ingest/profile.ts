/**
 * Where a process spent its CPU, from a V8 .cpuprofile (node --cpu-prof):
 * self time by package or repo folder, then by function. Enough to say which
 * layer to fix without opening DevTools.
 */
import fs from 'node:fs';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[] }

function owner(url: string): string {
  if (!url) return '(native / V8)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const repo = /\/(core|ingest|cli|scripts|bench|billing|admission)\/(.*)$/.exec(url);
  if (repo) return repo[1] === 'core' || repo[1] === 'ingest' ? `${repo[1]}/${repo[2]!.split('/')[0]}` : repo[1]!;
  return url.split('/').slice(-2).join('/');
}

export function summarizeProfile(file: string, top = 20): string[] {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const time = new Map<number, number>();
  p.samples.forEach((id, i) => time.set(id, (time.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const byOwner = new Map<string, number>();
  const byFn = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of time) {
    const n = byId.get(id)!;
    const fn = n.callFrame.functionName || '(anonymous)';
    if (fn === '(idle)') { idle += us; continue; }
    total += us;
    const o = fn === '(garbage collector)' ? '(garbage collector)' : fn === '(program)' ? '(program)' : owner(n.callFrame.url);
    byOwner.set(o, (byOwner.get(o) ?? 0) + us);
    const k = `${fn} ${n.callFrame.url ? `${n.callFrame.url.replace(/^.*\/(node_modules|work\/main)\//, '')}:${n.callFrame.lineNumber + 1}` : ''}`;
    byFn.set(k, (byFn.get(k) ?? 0) + us);
  }
  const pct = (us: number) => `${((us / total) * 100).toFixed(1).padStart(5)} %`;
  const lines = [`  busy ${(total / 1e6).toFixed(1)} s of the main thread, idle ${(idle / 1e6).toFixed(1)} s; self time by owner:`];
  for (const [o, us] of [...byOwner].sort((a, b) => b[1] - a[1]).slice(0, 12)) lines.push(`    ${pct(us)}  ${o}`);
  lines.push('  by function:');
  for (const [f, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`    ${pct(us)}  ${f}`);
  return lines;
}
