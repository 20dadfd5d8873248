#!/usr/bin/env bash
# npm run demo: works on a fresh clone. Installs the npm dependencies when
# they are missing, starts the local stores (scripts/stack.sh), then runs the
# demo itself (scripts/demo.ts); arguments are passed on to it, e.g.
#   npm run demo -- --as-of 2026-11-15T12:00:00Z --calls 200000
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "[demo] $*" >&2; }

if ! command -v node >/dev/null 2>&1; then
  say "Node.js 20 or later is required: install it (https://nodejs.org, or your distribution's nodejs package) and run npm run demo again."
  exit 1
fi
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 20 ]; then
  say "Node.js 20 or later is required, this is $(node --version)."
  exit 1
fi

# Install when node_modules is missing or older than the lock file. npm install, not npm ci:
# the lock file follows it, but some optional platform builds (chdb's macOS and arm64
# engines) are not on every registry, and npm ci refuses a lock file without them.
if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (npm install)"
  npm install --no-audit --no-fund
fi

# Redis and PostgreSQL for the later stages (admission, billing).
bash scripts/stack.sh up

exec node --import tsx scripts/demo.ts "$@"
