# Stand-in for edoburu/pgbouncer, from Debian's pgbouncer 1.18: pgbouncer, sh, sed and pg_isready, run as postgres.
ARG BASE=hardened-shop-standin/debian:bookworm
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends pgbouncer postgresql-client \
 && rm -rf /var/lib/apt/lists/* \
 && (id postgres >/dev/null 2>&1 || useradd --system --user-group --home-dir /var/lib/postgresql postgres)
USER postgres
EXPOSE 6432
CMD ["pgbouncer", "/etc/pgbouncer/pgbouncer.ini"]
