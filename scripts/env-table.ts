/** Prints the README's table of environment variables from core/config.ts (the one source of truth). */
import { describeConfig } from '../core/config.ts';

const esc = (s: string) => s.replace(/\|/g, '\\|');
console.log('| variable | default | meaning |\n|---|---|---|');
for (const k of describeConfig()) console.log(`| \`${k.env}\` | ${k.default === '' ? '(empty)' : `\`${esc(k.default)}\``} | ${esc(k.doc)} |`);
