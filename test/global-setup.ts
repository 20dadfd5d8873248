/**
 * Tests talk to real servers: make sure the local Redis and PostgreSQL are up
 * (scripts/stack.sh leaves alone any store whose URL is set) before any file runs.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  execFileSync('bash', [path.join(root, 'scripts/stack.sh'), 'up'], { stdio: 'inherit', cwd: root });
}
