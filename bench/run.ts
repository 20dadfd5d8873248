/**
 * `npm run bench -- <name> [options]`: runs bench/<name>/run.ts. Every
 * benchmark prints, as its LAST line, one JSON object
 * {"bench","unit","value","baseline","ratio",…}; `--quick` runs in under a
 * minute. bench/README.md says which question each one answers.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const available = fs.readdirSync(HERE, { withFileTypes: true })
  .filter((d) => d.isDirectory() && fs.existsSync(path.join(HERE, d.name, 'run.ts')))
  .map((d) => d.name)
  .sort();

const [name, ...rest] = process.argv.slice(2);
if (!name || name === '--help' || !available.includes(name)) {
  console.error(`Usage: npm run bench -- <${available.join('|')}> [--quick] [options]\nSee bench/README.md.`);
  process.exit(name && name !== '--help' ? 2 : 0);
}
const mod = (await import(`./${name}/run.ts`)) as { main(argv: string[]): Promise<void> };
try {
  await mod.main(rest);
} catch (e) {
  console.error(`bench ${name} failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
  process.exitCode = 1;
}
