/**
 * Runs the ingest service as a child process on its own data folder, for the
 * demo, the benchmark and the CLI tests: ports 0 by default, the real ports
 * read from its "ingest listening" log line, SIGTERM (graceful drain) to stop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The service's command line. Node runs it directly (not through npx) so the
 * child's pid is the service's own, which /proc/PID/status reports on.
 */
export const INGEST_COMMAND: readonly string[] = [process.execPath, '--import', 'tsx', 'ingest/main.ts'];

export interface IngestChild {
  readonly pid: number;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** host:port for gRPC clients. */
  readonly addr: string;
  readonly process: ChildProcess;
  /** The last log lines (stdout and stderr), for error messages. */
  tail(): string[];
  /** SIGTERM, then waits for exit (SIGKILL after `graceMs`); resolves to the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

export interface IngestChildOptions {
  dataDir: string;
  /** Extra environment (INGEST_FLUSH_ROWS, LOG_LEVEL, …). */
  env?: Record<string, string>;
  command?: readonly string[];
  /** Arguments for node before the script (e.g. --cpu-prof); only with the default command. */
  nodeArgs?: string[];
  timeoutMs?: number;
  /** Every log line, as it comes. */
  onLine?: (line: string) => void;
}

export async function startIngestChild(o: IngestChildOptions): Promise<IngestChild> {
  const [cmd, ...args] = o.command ?? INGEST_COMMAND;
  const argv = o.command ? args : [...(o.nodeArgs ?? []), ...args];
  const child = spawn(cmd!, argv, {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      PHONEBILL_DATA_DIR: o.dataDir,
      CHDB_PATH: '',
      INGEST_PORT: '0',
      INGEST_HTTP_PORT: '0',
      LOG_LEVEL: 'info',
      ...o.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  // Whatever ends this process (an error, a closed stdout pipe), the service
  // must not outlive it holding the data folder: SIGTERM drains and exits.
  const orphanGuard = () => { if (!exited) child.kill('SIGTERM'); };
  process.on('exit', orphanGuard);
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => {
    exited = { code, signal };
    process.off('exit', orphanGuard);
    resolve(code);
  }));

  const ready = new Promise<{ grpcPort: number; httpPort: number }>((resolve, reject) => {
    const onLine = (line: string) => {
      lines.push(line);
      if (lines.length > 200) lines.shift();
      o.onLine?.(line);
      if (!line.includes('ingest listening')) return;
      try {
        const j = JSON.parse(line) as { grpcPort?: number; httpPort?: number };
        if (j.grpcPort && j.httpPort) resolve({ grpcPort: j.grpcPort, httpPort: j.httpPort });
      } catch { /* not the JSON line */ }
    };
    readline.createInterface({ input: child.stdout! }).on('line', onLine);
    readline.createInterface({ input: child.stderr! }).on('line', onLine);
    void exit.then(() => reject(new Error(`the ingest service exited (${exited?.code ?? exited?.signal}) before listening:\n${lines.slice(-20).join('\n')}`)));
    child.once('error', reject);
  });

  const timeoutMs = o.timeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    const ports = await Promise.race([
      ready,
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`the ingest service did not listen within ${timeoutMs} ms:\n${lines.slice(-20).join('\n')}`)), timeoutMs); }),
    ]);
    return {
      pid: child.pid!,
      grpcPort: ports.grpcPort,
      httpPort: ports.httpPort,
      addr: `127.0.0.1:${ports.grpcPort}`,
      process: child,
      tail: () => [...lines],
      async stop(graceMs = 30_000) {
        if (exited) return exited.code;
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
        try { return await exit; } finally { clearTimeout(t); }
      },
    };
  } catch (e) {
    if (!exited) { child.kill('SIGKILL'); await exit; }
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** Peak resident memory (VmHWM) of a live process, in MiB, from /proc; undefined off Linux. */
export async function peakRssMiB(pid: number): Promise<number | undefined> {
  const { readFile } = await import('node:fs/promises');
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) a live process has used, from /proc/PID/stat. */
export async function cpuSeconds(pid: number): Promise<number | undefined> {
  const { readFile } = await import('node:fs/promises');
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 (utime, stime), counted from the state field (3) on; clock ticks are 100 Hz on Linux.
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return undefined;
  }
}
