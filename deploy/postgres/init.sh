#!/bin/sh
# docker-entrypoint-initdb.d hook: the app role and database, with the same timeouts as local development
# (deploy/scripts/stack.sh passes the same variables with the same defaults).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v app_user="${APP_DB_USER:-shop}" -v app_db="${APP_DB_NAME:-shop}" \
  -v statement_timeout="${PG_STATEMENT_TIMEOUT:-5s}" -v lock_timeout="${PG_LOCK_TIMEOUT:-3s}" \
  -v idle_in_transaction_timeout="${PG_IDLE_IN_TRANSACTION_TIMEOUT:-30s}" \
  -f /deploy/postgres/roles.sql
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -c "ALTER ROLE \"${APP_DB_USER:-shop}\" PASSWORD '${APP_DB_PASSWORD:-shop}'"
