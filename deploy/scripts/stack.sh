#!/usr/bin/env bash
# Brings up what the shop needs on this machine: system packages, PostgreSQL, Redis, the app's role and
# database, and PgBouncer in transaction pooling mode. Every step is idempotent.
#
#   stack.sh packages [chromium] [prometheus]   install missing Debian packages (root), or print the command
#   stack.sh services                           start PostgreSQL and Redis if they are down; create role + db
#   stack.sh role                               (re)apply deploy/postgres/roles.sql for $APP_DB_USER
#   stack.sh pgbouncer-start | pgbouncer-stop   the shop's PgBouncer on $PGBOUNCER_PORT
#
# A private PgBouncer (fault tests) is the same template on another port and run directory:
#   PGBOUNCER_PORT=16432 RUN_DIR=/tmp/x APP_DB_USER=... APP_DB_NAME=... stack.sh pgbouncer-start
set -euo pipefail

ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PG_HOST="${PG_HOST:-127.0.0.1}"
PG_PORT="${PG_PORT:-5432}"
PG_SUPERUSER="${PG_SUPERUSER:-postgres}"
APP_DB_USER="${APP_DB_USER:-shop}"
APP_DB_NAME="${APP_DB_NAME:-shop}"
REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${REDIS_PORT:-6379}"
PGBOUNCER_HOST="${PGBOUNCER_HOST:-127.0.0.1}"
PGBOUNCER_PORT="${PGBOUNCER_PORT:-6432}"
RUN_DIR="${RUN_DIR:-$ROOT_DIR/.run}/pgbouncer-$PGBOUNCER_PORT"

log() { printf '\033[1m[stack]\033[0m %s\n' "$*" >&2; }

# PgBouncer refuses to run as root, so as root it runs as postgres, which must reach its run directory. A
# checkout under /root (mode 700) is out of postgres's reach: its PgBouncer files then live under /tmp.
resolve_run_dir() {
  [ "$(id -u)" -eq 0 ] || return 0
  mkdir -p "$RUN_DIR"
  if ! runuser -u postgres -- test -x "$RUN_DIR" 2>/dev/null; then
    RUN_DIR="/tmp/hardened-shop-$(printf '%s' "$ROOT_DIR" | md5sum | cut -c1-12)/pgbouncer-$PGBOUNCER_PORT"
    mkdir -p "$RUN_DIR"
    chmod 755 "$(dirname "$RUN_DIR")"
  fi
}

need_packages() {
  local missing=()
  command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
  command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
  for extra in "$@"; do
    case "$extra" in
      chromium) [ -x /usr/bin/chromium ] || missing+=(chromium) ;;
      prometheus) command -v promtool >/dev/null 2>&1 || missing+=(prometheus) ;;
      *) log "unknown optional package $extra"; exit 2 ;;
    esac
  done
  apt_install "${missing[@]}"
}

# Install Debian packages as root (or say how to, and stop). The one installer: the compose smoke
# (deploy/smoke/run.sh) calls it as `stack.sh apt-install PACKAGE...`.
apt_install() {
  [ $# -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing system packages: $*"
    log "install them with:  sudo apt-get update && sudo apt-get install -y $*"
    exit 1
  fi
  log "installing $* with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # No init system here, and our own ports: policy-rc.d keeps Debian from starting the packages' services
  # (its pgbouncer, prometheus or dockerd).
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  rm -f /usr/sbin/policy-rc.d
}

pg_superuser_psql() {
  psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_SUPERUSER" "$@"
}

apply_role() {
  pg_superuser_psql -d postgres -v app_user="$APP_DB_USER" -v app_db="$APP_DB_NAME" \
    -v statement_timeout="${PG_STATEMENT_TIMEOUT:-5s}" -v lock_timeout="${PG_LOCK_TIMEOUT:-3s}" \
    -v idle_in_transaction_timeout="${PG_IDLE_IN_TRANSACTION_TIMEOUT:-30s}" \
    -f "$ROOT_DIR/deploy/postgres/roles.sql" >/dev/null
}

start_services() {
  if ! pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; then
    if [ "$PG_HOST" = "127.0.0.1" ] && command -v pg_ctlcluster >/dev/null 2>&1; then
      log "starting PostgreSQL"
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
    fi
    for _ in $(seq 1 30); do pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && break; sleep 1; done
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT" || { log "PostgreSQL is not answering on $PG_HOST:$PG_PORT"; exit 1; }
  fi
  if ! redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    if [ "$REDIS_HOST" = "127.0.0.1" ] && command -v redis-server >/dev/null 2>&1; then
      log "starting Redis"
      mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
      redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
        --dir /tmp --logfile /tmp/hardened-shop-redis.log
    fi
    for _ in $(seq 1 20); do redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.5; done
    redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping >/dev/null || { log "Redis is not answering"; exit 1; }
  fi
  apply_role
  log "PostgreSQL ($PG_HOST:$PG_PORT, role $APP_DB_USER, database $APP_DB_NAME) and Redis are up"
}

pgbouncer_bin() { command -v pgbouncer 2>/dev/null || echo /usr/sbin/pgbouncer; }

pgbouncer_start() {
  if psql -X -q -h "$PGBOUNCER_HOST" -p "$PGBOUNCER_PORT" -U "$APP_DB_USER" -d "$APP_DB_NAME" \
      -c 'select 1' >/dev/null 2>&1; then
    log "PgBouncer already answers on $PGBOUNCER_HOST:$PGBOUNCER_PORT"
    return 0
  fi
  resolve_run_dir
  mkdir -p "$RUN_DIR"
  PG_HOST="$PG_HOST" PG_PORT="$PG_PORT" PGBOUNCER_HOST="$PGBOUNCER_HOST" PGBOUNCER_PORT="$PGBOUNCER_PORT" \
    PGBOUNCER_PIDFILE="$RUN_DIR/pgbouncer.pid" PGBOUNCER_LOGFILE="$RUN_DIR/pgbouncer.log" \
    PGBOUNCER_AUTH_TYPE=trust PGBOUNCER_AUTH_FILE="$RUN_DIR/userlist.txt" PGBOUNCER_ADMIN_USER="$APP_DB_USER" \
    sh "$ROOT_DIR/deploy/pgbouncer/render.sh" > "$RUN_DIR/pgbouncer.ini"
  printf '"%s" ""\n"%s" ""\n' "$APP_DB_USER" "$PG_SUPERUSER" > "$RUN_DIR/userlist.txt"
  local as_user=()
  if [ "$(id -u)" -eq 0 ]; then
    # PgBouncer refuses to run as root.
    chown -R postgres:postgres "$RUN_DIR"
    as_user=(-u postgres)
  fi
  rm -f "$RUN_DIR/pgbouncer.pid"
  "$(pgbouncer_bin)" -d "${as_user[@]}" "$RUN_DIR/pgbouncer.ini"
  for _ in $(seq 1 50); do
    psql -X -q -h "$PGBOUNCER_HOST" -p "$PGBOUNCER_PORT" -U "$APP_DB_USER" -d "$APP_DB_NAME" \
      -c 'select 1' >/dev/null 2>&1 && { log "PgBouncer up on $PGBOUNCER_HOST:$PGBOUNCER_PORT (transaction pooling)"; return 0; }
    sleep 0.2
  done
  log "PgBouncer did not come up; see $RUN_DIR/pgbouncer.log"
  tail -n 20 "$RUN_DIR/pgbouncer.log" >&2 || true
  exit 1
}

pgbouncer_stop() {
  resolve_run_dir
  if [ -f "$RUN_DIR/pgbouncer.pid" ]; then
    local pid
    pid="$(cat "$RUN_DIR/pgbouncer.pid")"
    kill "$pid" 2>/dev/null || true
    # Restart on the same port only once the old process has let go of it.
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$RUN_DIR/pgbouncer.pid"
    log "PgBouncer on $PGBOUNCER_PORT stopped"
  fi
}

case "${1:-}" in
  packages) shift; need_packages "$@" ;;
  apt-install) shift; apt_install "$@" ;;
  services) start_services ;;
  role) apply_role ;;
  pgbouncer-start) pgbouncer_start ;;
  pgbouncer-stop) pgbouncer_stop ;;
  *) echo "usage: $0 packages [chromium] [prometheus] | services | role | apt-install PACKAGE... | pgbouncer-start | pgbouncer-stop" >&2; exit 2 ;;
esac
