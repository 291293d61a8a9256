"""Private copies of infrastructure for fault tests: they stop, pause and kill these, never the shared ones.

- `PrivatePgBouncer`: the project's own template (deploy/pgbouncer/pgbouncer.ini.template) started by the
  project's own script (deploy/scripts/stack.sh) on a free port and a temporary run directory, as a dedicated
  role whose timeouts come from deploy/postgres/roles.sql (applied by `stack.sh role`).
- `PrivateRedis`: a redis-server on a free port with no persistence.
- `ProviderSimulator`: payments/simulator.py served in a thread on a free port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import dj_database_url
import httpx
import psycopg
from django.conf import settings
from django.db import connections

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "deploy" / "scripts" / "stack.sh"
PG_HOST = "127.0.0.1"
PG_PORT = 5432
T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def superuser_connection() -> psycopg.Connection[tuple[Any, ...]]:
    """Direct to PostgreSQL as the superuser: for roles and for watching pg_stat_activity."""
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres", autocommit=True)


def pgbouncer_show(what: str) -> list[dict[str, Any]]:
    """`SHOW <what>` on the PgBouncer the app uses (its admin console), one dict per row."""
    pooled = dj_database_url.parse(settings.DATABASE_URL)
    with psycopg.connect(
        host=pooled["HOST"],
        port=pooled["PORT"],
        user=pooled["USER"],
        dbname="pgbouncer",
        autocommit=True,
        cursor_factory=psycopg.ClientCursor,  # the admin console speaks the simple query protocol only
    ) as admin:
        cursor = admin.execute(f"SHOW {what}")
        columns = [column.name for column in cursor.description or []]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def sleeping_queries(database: str) -> int:
    """How many `SELECT pg_sleep(...)` statements (a slow route's held thread) are running in `database`."""
    with superuser_connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query LIKE 'SELECT pg_sleep%%'", [database]
        ).fetchone()
    return int(row[0]) if row else 0


def wait_until(predicate: Callable[[], bool], *, timeout_s: float = 30, every_s: float = 0.1) -> bool:
    """Whether the predicate came true in time (for a test that asserts on the answer itself); see wait_for."""
    try:
        wait_for(predicate, timeout_s=timeout_s, every_s=every_s)
    except AssertionError:
        return predicate()
    return True


def wait_for(
    condition: Callable[[], Any], *, timeout_s: float = 30, what: str = "a condition", every_s: float = 0.1
) -> Any:
    """The condition's first truthy value; a timeout fails the test, naming what it waited for."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


# --- PgBouncer --------------------------------------------------------------------------------------------------


@dataclass
class PrivatePgBouncer:
    database: str
    role: str
    pool_size: int
    query_wait_timeout_s: int
    port: int = field(default_factory=free_port)
    run_root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="capacity-pgbouncer-")))

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PGBOUNCER_PORT": str(self.port),
            "RUN_DIR": str(self.run_root),
            "APP_DB_USER": self.role,
            "APP_DB_NAME": self.database,
            "PGBOUNCER_POOL_SIZE": str(self.pool_size),
            "PGBOUNCER_RESERVE_POOL_SIZE": "0",
            "PGBOUNCER_MAX_DB_CONNECTIONS": str(self.pool_size),
            "PGBOUNCER_QUERY_WAIT_TIMEOUT": str(self.query_wait_timeout_s),
        }

    def start(self) -> None:
        self.run_root.chmod(0o755)  # PgBouncer drops root and runs as postgres: it must reach its run directory
        started = subprocess.run([str(STACK), "pgbouncer-start"], env=self._env(), capture_output=True, text=True)
        assert started.returncode == 0, f"private PgBouncer did not start: {started.stderr}"

    def stop(self) -> None:
        """What a crash or a `kill` looks like to the app: the port stops answering."""
        subprocess.run([str(STACK), "pgbouncer-stop"], env=self._env(), check=True, capture_output=True)

    def admin(self, command: str) -> list[dict[str, Any]]:
        """Run a command on PgBouncer's admin console (SHOW POOLS, PAUSE, RESUME...)."""
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.role, dbname="pgbouncer", autocommit=True
        ) as conn:
            cursor = conn.execute(command)  # the admin console speaks the simple query protocol only
            if cursor.description is None:
                return []
            names = [column.name for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def pool(self) -> dict[str, Any]:
        return next(row for row in self.admin("SHOW POOLS") if row["database"] == self.database)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.run_root, ignore_errors=True)


def pool_role_create(*, role: str, database: str, statement_timeout: str, connection_limit: int) -> None:
    """A login role for the private pool: the app role's privileges, its own timeouts and a hard connection cap.

    The cap stands in for PostgreSQL's max_connections, so the "no pooling" twin can hit it without starving
    the shared server that everyone else's tests use.
    """
    env = {
        **os.environ,
        "APP_DB_USER": role,
        "APP_DB_NAME": database,
        "PG_STATEMENT_TIMEOUT": statement_timeout,
    }
    subprocess.run([str(STACK), "role"], env=env, check=True, capture_output=True)
    app_role = str(settings.DATABASES["default"]["USER"])
    with superuser_connection() as conn:
        conn.execute(f'GRANT "{app_role}" TO "{role}"')
        conn.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT {int(connection_limit)}')


def server_connections(*, role: str, database: str) -> int:
    with superuser_connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND datname = %s", [role, database]
        ).fetchone()
    return int(row[0]) if row else 0


@contextmanager
def django_database_at(*, host: str, port: int, user: str, connect_timeout_s: int | None = None) -> Iterator[None]:
    """Point every thread's Django connection at another server (a private PgBouncer, or PostgreSQL direct).

    `connect_timeout_s` replaces the app's connect timeout for a test that is about something else than an
    unreachable server (hundreds of handshakes at once on a loaded 2-core machine can take longer than 3 s).
    """
    settings_dict = settings.DATABASES["default"]
    saved = {key: settings_dict[key] for key in ("HOST", "PORT", "USER")}
    options = settings_dict.get("OPTIONS")
    saved_options: dict[str, Any] = dict(options) if isinstance(options, dict) else {}
    connections.close_all()
    settings_dict.update(HOST=host, PORT=port, USER=user)
    if connect_timeout_s is not None:
        settings_dict["OPTIONS"] = {**saved_options, "connect_timeout": connect_timeout_s}
    try:
        yield
    finally:
        connections.close_all()
        settings_dict.update(saved)
        settings_dict["OPTIONS"] = saved_options


# --- Redis ------------------------------------------------------------------------------------------------------


@dataclass
class PrivateRedis:
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_until(self._answers, timeout_s=10), "private redis-server did not start"

    def _answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.2).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


# --- Payment provider -------------------------------------------------------------------------------------------


class ProviderSimulator:
    """payments/simulator.py on a free port, in a thread of the test process."""

    def __init__(self) -> None:
        from payments import simulator

        self.server = simulator.serve("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="provider-simulator", daemon=True)
        self.thread.start()

    def control(self, **changes: Any) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.post(f"{self.url}/_control", json=changes, timeout=5).json()
        return answer

    def reset(self) -> None:
        self.control(reset=True, outage=False, latency_ms=0, error_rate=0.0, decline_rate=0.0)

    def stats(self) -> dict[str, Any]:
        answer: dict[str, Any] = httpx.get(f"{self.url}/_stats", timeout=5).json()
        return answer

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- Threads ----------------------------------------------------------------------------------------------------


def run_in_threads(
    count: int,
    work: Callable[[int], T],
    *,
    while_held: Callable[[], None] | None = None,
    timeout_s: float = 180,
) -> list[T | BaseException]:
    """Run work(0..count-1) in `count` real threads released together; each closes its own DB connections.

    With `while_held`, every thread keeps its connections open after its work until `while_held()` (run by
    the calling thread once all of them are done) returns: the moment of maximum pressure, frozen to look at.
    """
    start = threading.Barrier(count)
    done = threading.Barrier(count + 1) if while_held else None
    release = threading.Event()
    results: list[T | BaseException] = [RuntimeError("did not run")] * count

    def run(index: int) -> None:
        try:
            start.wait(timeout=60)
            results[index] = work(index)
        except BaseException as error:
            results[index] = error
        finally:
            if done is not None:
                done.wait(timeout=timeout_s)
                release.wait(timeout=timeout_s)
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,), name=f"client-{index}") for index in range(count)]
    for thread in threads:
        thread.start()
    try:
        if done is not None and while_held is not None:
            done.wait(timeout=timeout_s)
            while_held()
    finally:
        release.set()
        for thread in threads:
            thread.join(timeout=timeout_s)
    assert not any(thread.is_alive() for thread in threads), "a client thread hung"
    return results


class PeakSampler:
    """Samples a number in a background thread and remembers the highest value seen."""

    def __init__(self, sample: Callable[[], int], every_s: float = 0.02) -> None:
        self.sample, self.every_s, self.peak = sample, every_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            self._stop.wait(self.every_s)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.peak = max(self.peak, self.sample())


# --- The app itself ---------------------------------------------------------------------------------------------


class AppServer:
    """The shop under gunicorn with config/gunicorn.conf.py, in a subprocess: a real request lifecycle
    (persistent connections, close_old_connections, health checks), pointed wherever the test says."""

    def __init__(
        self, *, env: dict[str, str], workers: int = 1, threads: int = 4, config: str = "config/gunicorn.conf.py"
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(tempfile.mkstemp(prefix="capacity-gunicorn-", suffix=".log")[1])
        full_env = {
            **os.environ,
            "DJANGO_ENV": "test",
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": str(workers),
            "GUNICORN_THREADS": str(threads),
            "GUNICORN_LOG_LEVEL": "warning",
            **env,
        }
        full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "gunicorn"), "config.wsgi:application", "-c", config],
                cwd=ROOT,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if not wait_until(self._alive, timeout_s=60, every_s=0.2):
            self.stop()
            raise AssertionError(f"gunicorn did not start:\n{self.log()}")

    def client(self) -> httpx.Client:
        # No keep-alive: an idle kept-alive connection would make the graceful shutdown wait for it.
        return httpx.Client(base_url=self.url, timeout=30, headers={"Connection": "close"})

    def _alive(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log_path.unlink(missing_ok=True)
