"""A private copy of the shop for load runs: gunicorn, a Celery worker, the payment provider, a Redis and an
SMTP sink (mail/sink.py, so the run's mail lands in <log dir>/mail and never in a developer's sink).

Only PostgreSQL and PgBouncer are shared with everything else on the machine; the load stack gets its own
database (created and migrated directly on PostgreSQL, then used through PgBouncer like production) and its own
redis-server, so its Celery queue, cache and throttle counters cannot mix with a developer's `make run`.

    python -m loadtests.stack up --db shop_load --app-port 8000 --provider-port 8100   # stays up until Ctrl-C
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"

PG_HOST = os.environ.get("LOAD_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("LOAD_PG_PORT", "5432"))
PGBOUNCER_PORT = int(os.environ.get("LOAD_PGBOUNCER_PORT", "6432"))
PG_USER = os.environ.get("LOAD_PG_USER", "shop")

# Throttles count per client IP and per user, and every simulated user comes from 127.0.0.1: with production
# limits the per-IP scopes would measure one very busy IP, not 150 people. The load stack raises only the
# per-IP limits (override with the same variables); per-user and per-username limits stay as in production,
# so a customer who clicks too fast still meets 429, which the suite counts as an expected outcome.
LOAD_THROTTLE_ENV = {
    "THROTTLE_LOGIN_RATE": os.environ.get("THROTTLE_LOGIN_RATE", "100000/min"),
    "THROTTLE_REGISTER_RATE": os.environ.get("THROTTLE_REGISTER_RATE", "100000/min"),
    "THROTTLE_IP_RATE": os.environ.get("THROTTLE_IP_RATE", "1000000/min"),
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def direct_url(db_name: str) -> str:
    return f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{db_name}"


def pooled_url(db_name: str) -> str:
    return f"postgres://{PG_USER}@{PG_HOST}:{PGBOUNCER_PORT}/{db_name}"


def _admin_connection() -> psycopg.Connection[Any]:
    conn = psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True)
    # The app role's 5 s statement_timeout is for requests; DROP DATABASE forces a checkpoint, which on a busy
    # machine can take longer.
    conn.execute("SET statement_timeout = '120s'")
    return conn


def database_prepare(db_name: str, *, fresh: bool, log: Path | None = None) -> None:
    """Create the database directly on PostgreSQL (DDL stays out of the pooler) and migrate it."""
    with _admin_connection() as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db_name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{db_name}" OWNER "{PG_USER}"')
    env = {**os.environ, "DATABASE_URL": direct_url(db_name), "DIRECT_DATABASE_URL": direct_url(db_name)}
    run_logged([str(VENV_BIN / "python"), "manage.py", "migrate", "--noinput", "-v0"], env=env, log=log)


def database_drop(db_name: str) -> None:
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def run_logged(command: list[str], *, env: dict[str, str], log: Path | None) -> None:
    output = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if log is not None:
        with log.open("a") as handle:
            handle.write(f"$ {' '.join(command)}\n{output.stdout}{output.stderr}\n")
    if output.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({output.returncode}):\n{output.stderr[-3000:]}")


@dataclass
class Stack:
    """The processes of one private shop. `start()` returns once /readyz answers; `stop()` ends them all."""

    db_name: str
    app_port: int = 8000
    provider_port: int = 8100
    redis_port: int = 0
    mail_port: int = 0
    log_dir: Path = field(default_factory=lambda: ROOT / ".run" / "loadtest")
    gunicorn_workers: int = int(os.environ.get("LOAD_GUNICORN_WORKERS", "3"))
    gunicorn_threads: int = int(os.environ.get("LOAD_GUNICORN_THREADS", "4"))
    celery_concurrency: int = int(os.environ.get("LOAD_CELERY_CONCURRENCY", "2"))
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    @property
    def provider_url(self) -> str:
        return f"http://127.0.0.1:{self.provider_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def database_url(self) -> str:
        return pooled_url(self.db_name)

    @property
    def prometheus_dir(self) -> Path:
        return self.log_dir / "prometheus"

    @property
    def mail_dir(self) -> Path:
        return self.log_dir / "mail"

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "DJANGO_ENV": "development",
            "DEBUG": "false",
            "DATABASE_URL": self.database_url,
            "DIRECT_DATABASE_URL": direct_url(self.db_name),
            "REDIS_URL": self.redis_url,
            "CELERY_BROKER_URL": self.redis_url,
            "PAYMENT_PROVIDER_URL": self.provider_url,
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.mail_port),
            "MAIL_SINK_DIR": str(self.mail_dir),
            "GUNICORN_BIND": f"127.0.0.1:{self.app_port}",
            "GUNICORN_WORKERS": str(self.gunicorn_workers),
            "GUNICORN_THREADS": str(self.gunicorn_threads),
            "GUNICORN_LOG_LEVEL": os.environ.get("LOAD_GUNICORN_LOG_LEVEL", "info"),  # worker restarts show
            "CELERY_WORKER_CONCURRENCY": str(self.celery_concurrency),
            "LOG_LEVEL": os.environ.get("LOAD_APP_LOG_LEVEL", "WARNING"),
            "SERVER_TIMING_ENABLED": "true",
            # Metrics across processes, as `make run` does: every worker writes into one private directory.
            "PROMETHEUS_MULTIPROC_DIR": str(self.prometheus_dir),
            **LOAD_THROTTLE_ENV,
        }
        env.pop("FAST_PASSWORD_HASHER", None)  # the load stack hashes passwords like production does
        env.update(self.extra_env)
        return env

    def _spawn(self, name: str, command: list[str]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("ab")
        # Own process group: stop() signals the whole group (gunicorn and celery fork children).
        self.processes[name] = subprocess.Popen(
            command, cwd=ROOT, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start(self, *, timeout_s: float = 60) -> Stack:
        for port in (self.app_port, self.provider_port):
            if port_in_use(port):
                raise RuntimeError(f"port {port} is already in use; pick free ports (APP_PORT / PROVIDER_PORT)")
        if not self.redis_port:
            self.redis_port = free_port()
        if not self.mail_port:
            self.mail_port = free_port()
        shutil.rmtree(self.mail_dir, ignore_errors=True)  # the audit counts this run's messages only
        shutil.rmtree(self.log_dir / "prometheus", ignore_errors=True)  # stale files of dead workers
        (self.log_dir / "prometheus").mkdir(parents=True)
        redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
        self._spawn(
            "redis",
            [redis_server, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        )
        python = str(VENV_BIN / "python")
        self._spawn("provider", [python, "-m", "payments.simulator", "--port", str(self.provider_port)])
        self._spawn(
            "mail", [python, "-m", "mail.sink", "--port", str(self.mail_port), "--directory", str(self.mail_dir)]
        )
        self._spawn(
            "worker",
            [
                str(VENV_BIN / "celery"),
                "-A",
                "config",
                "worker",
                "--loglevel=WARNING",
                f"--concurrency={self.celery_concurrency}",
                "--pool=prefork",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
        )
        self._spawn("web", [str(VENV_BIN / "gunicorn"), "config.wsgi:application", "-c", "config/gunicorn.conf.py"])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"{name} exited with {process.returncode}; see {self.log_dir}/{name}.log")
            if _answers(f"{self.host}/readyz") and _answers(f"{self.provider_url}/healthz"):
                return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the load stack did not become ready in {timeout_s:.0f}s; see {self.log_dir}")

    def stop(self) -> None:
        # Web first (no new orders), then the worker gets a moment to finish what it holds.
        for name in ("web", "worker", "provider", "mail", "redis"):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up"])
    parser.add_argument("--db", default=os.environ.get("LOAD_DB_NAME", "shop_load"))
    parser.add_argument("--app-port", type=int, default=8000)
    parser.add_argument("--provider-port", type=int, default=8100)
    parser.add_argument("--fresh", action="store_true", help="drop and re-create the database first")
    args = parser.parse_args()
    database_prepare(args.db, fresh=args.fresh)
    stack = Stack(db_name=args.db, app_port=args.app_port, provider_port=args.provider_port).start(timeout_s=180)
    print(f"load stack up: {stack.host} (database {args.db}, redis {stack.redis_url}); Ctrl-C stops it", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the stack like Ctrl-C does
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
