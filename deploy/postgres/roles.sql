-- The application's role and database. Idempotent: run on every `make run` and `make test`.
-- Timeouts live on the role, not in connection options, so they survive PgBouncer's transaction pooling.
\set ON_ERROR_STOP on
SELECT format('CREATE ROLE %I LOGIN CREATEDB', :'app_user')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user') \gexec
-- The values come from stack.sh (PG_STATEMENT_TIMEOUT, PG_LOCK_TIMEOUT, PG_IDLE_IN_TRANSACTION_TIMEOUT).
-- Slow query: cancelled after 5 s; the client gets 503 instead of a hung worker.
ALTER ROLE :"app_user" SET statement_timeout = :'statement_timeout';
-- Lock pile-up: nobody waits more than 3 s for a row lock (order placement uses a shorter SET LOCAL).
ALTER ROLE :"app_user" SET lock_timeout = :'lock_timeout';
-- Forgotten transaction: a session idle inside a transaction is killed after 30 s, releasing its locks.
ALTER ROLE :"app_user" SET idle_in_transaction_session_timeout = :'idle_in_transaction_timeout';
ALTER ROLE :"app_user" SET timezone = 'UTC';
SELECT format('CREATE DATABASE %I OWNER %I', :'app_db', :'app_user')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'app_db') \gexec
