"""A private workshop stack: the load suite's private shop (loadtests/stack.py) plus the twins' own server.

The twins get their own gunicorn (same app, same database, `WORKSHOP_ENABLED=true`): a bulkhead, so a twin that
hangs on the payment provider or runs 20,000 queries per page holds its own request threads, not the shop's,
and the fixed path is judged on its own merits. `make workshop` runs the same two servers (workshop/Procfile).

The capacity twin connects straight to PostgreSQL as its own role, whose CONNECTION LIMIT stands in for a small
server's max_connections (`twin_role_ensure`), so it can exhaust its share without exhausting the server that the
real shop and everyone else on the machine use.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field

import psycopg

from loadtests.stack import PG_HOST, PG_PORT, PG_USER, VENV_BIN, Stack, _answers, free_port

PG_SUPERUSER = os.environ.get("WORKSHOP_PG_SUPERUSER", "postgres")


def twin_role_ensure(*, role: str, connection_limit: int) -> str | None:
    """Create (or re-cap) the capacity twin's login role. Returns None, or why it could not be done.

    The role gets the app role's privileges (GRANT shop TO role) and the same timeouts, and a hard CONNECTION
    LIMIT. It needs a superuser once (local trust auth, as `make services` uses); without one the SQL is printed.
    """
    statements = [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
        f'CREATE ROLE "{role}" LOGIN; END IF; END $$',
        f'GRANT "{PG_USER}" TO "{role}"',
        f'ALTER ROLE "{role}" CONNECTION LIMIT {int(connection_limit)}',
        f"ALTER ROLE \"{role}\" SET statement_timeout = '5s'",
        f"ALTER ROLE \"{role}\" SET lock_timeout = '3s'",
        f"ALTER ROLE \"{role}\" SET idle_in_transaction_session_timeout = '30s'",
        f"ALTER ROLE \"{role}\" SET timezone = 'UTC'",
    ]
    try:
        with psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_SUPERUSER, dbname="postgres", autocommit=True, connect_timeout=3
        ) as conn:
            for statement in statements:
                conn.execute(statement)  # type: ignore[arg-type]
    except psycopg.Error as error:
        return f"{error}".strip() + "\n  run as a PostgreSQL superuser:\n    " + ";\n    ".join(statements) + ";"
    return None


@dataclass
class WorkshopStack(Stack):
    """Stack (web, worker, provider, redis) + `twins`: the same app on its own port and request threads."""

    twin_port: int = field(default_factory=free_port)

    @property
    def twin_host(self) -> str:
        return f"http://127.0.0.1:{self.twin_port}"

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(
            # JSON lines as under `make workshop`: a twin's 500s are frequent, and the console renderer's pretty
            # tracebacks cost seconds of CPU each, which would slow the twin for the wrong reason.
            LOG_FORMAT=os.environ.get("LOG_FORMAT", "json"),
            WORKSHOP_ENABLED="true",
            WORKSHOP_SHOP_URL=self.host,
            WORKSHOP_TWIN_URL=self.twin_host,
            # Each mode measures one failure mode's fix against its twin: the n-plus-one scorecard counts the
            # queries of the fixed list (a catalog cache hit runs none) and the capacity one counts answers
            # under a load calibrated without load shedding. Both stay off unless asked for.
            CATALOG_CACHE_S=os.environ.get("CATALOG_CACHE_S", "0"),
            SHEDDING_MAX_QUEUE_MS=os.environ.get("SHEDDING_MAX_QUEUE_MS", "0"),
        )
        return env

    def start(self, *, timeout_s: float = 60) -> WorkshopStack:
        super().start(timeout_s=timeout_s)
        gunicorn = str(VENV_BIN / "gunicorn")
        bind = f"127.0.0.1:{self.twin_port}"
        self._spawn("twins", [gunicorn, "config.wsgi:application", "-c", "config/gunicorn.conf.py", "--bind", bind])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            twins = self.processes["twins"]
            if twins.poll() is not None:
                self.stop()
                raise RuntimeError(f"the twins' server exited with {twins.returncode}; see {self.log_dir}/twins.log")
            if _answers(f"{self.twin_host}/healthz"):
                return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the twins' server did not come up in {timeout_s:.0f}s; see {self.log_dir}/twins.log")

    def stop(self) -> None:
        twins = self.processes.pop("twins", None)
        if twins is not None and twins.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(twins.pid, signal.SIGTERM)
            try:
                twins.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(twins.pid, signal.SIGKILL)
                twins.wait(timeout=5)
        super().stop()
