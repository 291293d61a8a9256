#!/bin/sh
# docker-entrypoint-initdb.d hook: the app role and database, with the same timeouts as local development.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v app_user="${APP_DB_USER:-shop}" -v app_db="${APP_DB_NAME:-shop}" -f /deploy/postgres/roles.sql
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -c "ALTER ROLE \"${APP_DB_USER:-shop}\" PASSWORD '${APP_DB_PASSWORD:-shop}'"
