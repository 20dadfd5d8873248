#!/usr/bin/env bash
# Local Redis and PostgreSQL on 127.0.0.1, data under $PHONEBILL_DATA_DIR
# (default .data). Installs the Debian packages when they are missing.
#   scripts/stack.sh up     start what is not running (idempotent)
#   scripts/stack.sh down   stop both
# A store whose URL is already set (REDIS_URL / DATABASE_URL) is left alone:
# that is an external server.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="$(realpath -m "${PHONEBILL_DATA_DIR:-.data}")"
REDIS_PORT="${PHONEBILL_REDIS_PORT:-6379}"
PG_PORT="${PHONEBILL_PG_PORT:-5432}"
say() { echo "[stack] $*" >&2; }
die() { echo "[stack] error: $*" >&2; exit 1; }

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    die "missing $* and not root: install the Debian package(s) '$*' (sudo apt-get install -y $*) or set REDIS_URL / DATABASE_URL to external servers"
  fi
  say "installing Debian package(s): $*"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >"$DATA/apt.log" 2>&1; then
    die "apt-get install $* failed (see $DATA/apt.log); install it by hand or set REDIS_URL / DATABASE_URL"
  fi
}

pg_bin() {
  local b
  # The real bin folder (pg_isready lives there, not beside a symlinked initdb).
  for b in /usr/lib/postgresql/*/bin/initdb "$(command -v initdb 2>/dev/null || true)"; do
    if [ -n "$b" ] && [ -x "$b" ]; then b="$(realpath "$b")"; [ -x "$(dirname "$b")/pg_isready" ] && { dirname "$b"; return 0; }; fi
  done
  return 1
}

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

redis_up() {
  if [ -n "${REDIS_URL:-}" ]; then say "REDIS_URL set: using $REDIS_URL"; return; fi
  command -v redis-server >/dev/null || apt_install redis-server
  if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then say "redis already up on 127.0.0.1:$REDIS_PORT"; return; fi
  mkdir -p "$DATA/redis"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DATA/redis" --daemonize yes \
    --pidfile "$DATA/redis/redis.pid" --logfile "$DATA/redis/redis.log" --appendonly yes --save "" \
    --notify-keyspace-events "" >/dev/null
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && { say "redis up on 127.0.0.1:$REDIS_PORT"; return; }; sleep 0.1; done
  die "redis did not start; see $DATA/redis/redis.log"
}

pg_up() {
  if [ -n "${DATABASE_URL:-}" ]; then say "DATABASE_URL set: using it"; return; fi
  local bin; bin="$(pg_bin)" || { apt_install postgresql; bin="$(pg_bin)" || die "no initdb after installing postgresql"; }
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres; fi
  local dir="$DATA/postgres"
  if "$bin/pg_isready" -h 127.0.0.1 -p "$PG_PORT" -q 2>/dev/null; then say "postgres already up on 127.0.0.1:$PG_PORT"
  else
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$dir"; chmod 700 "$dir"; fi
    # The postgres user must be able to reach the data folder.
    if [ "$(id -u)" = 0 ]; then p="$dir"; while [ "$p" != / ]; do p="$(dirname "$p")"; chmod o+x "$p" 2>/dev/null || true; done; fi
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_pg "$bin/initdb" -D "$dir" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$DATA/initdb.log" 2>&1 || die "initdb failed: see $DATA/initdb.log"
    fi
    as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $dir -c max_connections=200 -c fsync=on" start >/dev/null \
      || die "postgres did not start; see $dir/server.log"
    say "postgres up on 127.0.0.1:$PG_PORT"
  fi
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='phonebill'" | grep -q 1 \
    || psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE phonebill" >/dev/null
}

down() {
  [ -f "$DATA/redis/redis.pid" ] && kill "$(cat "$DATA/redis/redis.pid")" 2>/dev/null || true
  local bin; if bin="$(pg_bin)" && [ -f "$DATA/postgres/postmaster.pid" ]; then as_pg "$bin/pg_ctl" -D "$DATA/postgres" -m fast stop >/dev/null || true; fi
  say "stopped"
}

mkdir -p "$DATA"
case "${1:-up}" in
  up) redis_up; pg_up ;;
  down) down ;;
  *) die "usage: scripts/stack.sh up|down" ;;
esac
