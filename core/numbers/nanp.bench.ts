/**
 * Micro-check of the hot path (not a test): ns per parseNumber and per
 * classifyCall on valid geographic numbers, plus the one-time table build.
 *   npx tsx core/numbers/nanp.bench.ts
 */
import { classifyCall, parseNumber, warmUpNumbers } from './index.ts';

const stats = warmUpNumbers();

const numbers: string[] = [];
for (let n = 0; numbers.length < 100_000; n++) {
  const candidate = `+1${String(2_000_000_000 + ((n * 2_654_435_761) % 8_000_000_000))}`;
  const p = parseNumber(candidate);
  if (p.kind === 'nanp' && !p.tollFree && !p.premium) numbers.push(candidate);
}
// Strings decoded from protobuf are flat; concatenated ones are not, and
// would charge the first lookup with flattening them.
const flat: string[] = JSON.parse(JSON.stringify(numbers));

function nsPerOp(fn: (i: number) => unknown): number {
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < flat.length; i++) fn(i);
    best = Math.min(best, Number(process.hrtime.bigint() - t) / flat.length);
  }
  return Math.round(best);
}

const parse = nsPerOp((i) => parseNumber(flat[i]));
const classify = nsPerOp((i) => classifyCall(flat[i], flat[(i + 1) % flat.length]));
const service = nsPerOp((i) => classifyCall(flat[i], '911'));
console.log(`table: ${stats.nodes} nodes, ${stats.leaves} leaves, ${stats.libphonenumberCalls} libphonenumber calls, built in ${stats.buildMs.toFixed(0)} ms`);
console.log(`parseNumber ${parse} ns/op, classifyCall ${classify} ns/op, classifyCall to 911 ${service} ns/op`);
console.log(JSON.stringify({ bench: 'numbers.classifyCall', unit: 'ns/op', value: classify, parse_ns: parse, build_ms: Math.round(stats.buildMs) }));
