#!/bin/sh
# Render pgbouncer.ini.template (beside this script) to stdout, filling each @VAR@ from the environment.
# The defaults are the connection budget of docs/patterns/03-capacity.md; every place that runs PgBouncer
# (deploy/scripts/stack.sh, the compose stack, Kubernetes) renders the same template through this script.
set -eu
template="${PGBOUNCER_TEMPLATE:-$(dirname "$0")/pgbouncer.ini.template}"
sed -e "s|@PG_HOST@|${PG_HOST:-127.0.0.1}|g" \
    -e "s|@PG_PORT@|${PG_PORT:-5432}|g" \
    -e "s|@PGBOUNCER_HOST@|${PGBOUNCER_HOST:-127.0.0.1}|g" \
    -e "s|@PGBOUNCER_PORT@|${PGBOUNCER_PORT:-6432}|g" \
    -e "s|@PGBOUNCER_PIDFILE@|${PGBOUNCER_PIDFILE:-}|g" \
    -e "s|@PGBOUNCER_LOGFILE@|${PGBOUNCER_LOGFILE:-}|g" \
    -e "s|@PGBOUNCER_AUTH_TYPE@|${PGBOUNCER_AUTH_TYPE:-trust}|g" \
    -e "s|@PGBOUNCER_AUTH_FILE@|${PGBOUNCER_AUTH_FILE:?PGBOUNCER_AUTH_FILE: the userlist path}|g" \
    -e "s|@PGBOUNCER_ADMIN_USER@|${PGBOUNCER_ADMIN_USER:-shop}|g" \
    -e "s|@PGBOUNCER_MAX_CLIENT_CONN@|${PGBOUNCER_MAX_CLIENT_CONN:-1000}|g" \
    -e "s|@PGBOUNCER_POOL_SIZE@|${PGBOUNCER_POOL_SIZE:-20}|g" \
    -e "s|@PGBOUNCER_RESERVE_POOL_SIZE@|${PGBOUNCER_RESERVE_POOL_SIZE:-5}|g" \
    -e "s|@PGBOUNCER_MAX_DB_CONNECTIONS@|${PGBOUNCER_MAX_DB_CONNECTIONS:-25}|g" \
    -e "s|@PGBOUNCER_MAX_USER_CONNECTIONS@|${PGBOUNCER_MAX_USER_CONNECTIONS:-75}|g" \
    -e "s|@PGBOUNCER_QUERY_WAIT_TIMEOUT@|${PGBOUNCER_QUERY_WAIT_TIMEOUT:-5}|g" \
    "$template"
