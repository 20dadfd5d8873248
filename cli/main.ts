/**
 * `phonebill <command>`: each command lives in cli/commands/<name>.ts and
 * exports a CliCommand. This file only dispatches.
 */
import type { CliCommand } from './command.ts';

/** Command names in `--help` order; a command whose file is not there yet is not listed. */
const COMMANDS = ['ingest', 'sql', 'subscribers', 'bill', 'token'];

async function load(name: string): Promise<CliCommand | undefined> {
  if (!COMMANDS.includes(name)) return undefined;
  try {
    const mod = (await import(`./commands/${name}.ts`)) as { command: CliCommand };
    return mod.command;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String((e as Error).message).includes(`commands/${name}.ts`)) return undefined;
    throw e;
  }
}

async function help(): Promise<void> {
  const lines = ['Usage: phonebill <command> [options]', '', 'Commands:'];
  for (const name of COMMANDS) {
    const c = await load(name);
    if (c) lines.push(`  ${name.padEnd(12)} ${c.summary}`);
  }
  lines.push('', 'Run `phonebill <command> --help` for a command\'s options.');
  console.log(lines.join('\n'));
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') { await help(); return name ? 0 : 1; }
  const cmd = await load(name);
  if (!cmd) { console.error(`phonebill: unknown command '${name}'. Run 'phonebill --help'.`); return 2; }
  if (rest.includes('--help') || rest.includes('-h')) { console.log(cmd.usage); return 0; }
  return cmd.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(`phonebill: ${err instanceof Error ? err.message : String(err)}`); process.exitCode = 1; },
);
