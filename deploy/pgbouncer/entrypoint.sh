#!/bin/sh
# PgBouncer in a container (compose and Kubernetes): the settings of pgbouncer.ini.template, rendered at start
# into a tmpfs (the root filesystem stays read-only), then PgBouncer in the foreground, logging to stderr.
#   PG_HOST, PG_PORT                               the PostgreSQL server
#   PGBOUNCER_AUTH_USER, PGBOUNCER_AUTH_PASSWORD   the app role; the password is never written to the log
#   PGBOUNCER_POOL_SIZE, ... (render.sh)           the budget, when a deployment differs from the defaults
set -eu
here="$(dirname "$0")"
run_dir="${PGBOUNCER_RUN_DIR:-/tmp/pgbouncer}"
mkdir -p "$run_dir"
umask 077
: "${PGBOUNCER_AUTH_USER:?PGBOUNCER_AUTH_USER: the role clients log in as}"
: "${PGBOUNCER_AUTH_PASSWORD:?PGBOUNCER_AUTH_PASSWORD: that role's password}"
# userlist.txt quotes with "; a " inside a value is written twice.
printf '"%s" "%s"\n' "$(printf %s "$PGBOUNCER_AUTH_USER" | sed 's/"/""/g')" \
  "$(printf %s "$PGBOUNCER_AUTH_PASSWORD" | sed 's/"/""/g')" > "$run_dir/userlist.txt"
PGBOUNCER_HOST="${PGBOUNCER_HOST:-0.0.0.0}" \
PGBOUNCER_AUTH_TYPE="${PGBOUNCER_AUTH_TYPE:-scram-sha-256}" \
PGBOUNCER_AUTH_FILE="$run_dir/userlist.txt" \
PGBOUNCER_ADMIN_USER="${PGBOUNCER_ADMIN_USER:-$PGBOUNCER_AUTH_USER}" \
PGBOUNCER_PIDFILE="" PGBOUNCER_LOGFILE="" \
  sh "$here/render.sh" > "$run_dir/pgbouncer.ini"
unset PGBOUNCER_AUTH_PASSWORD
exec pgbouncer "$run_dir/pgbouncer.ini"
