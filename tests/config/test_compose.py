"""docker-compose.yml cannot run here (no Docker engine), so its wiring is checked as data, and the init script
the postgres container runs is run against the local server, exactly as the image's entrypoint would."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def test_the_app_reaches_postgres_only_through_pgbouncer(compose):
    services = compose["services"]
    for name in ("web", "worker", "beat"):
        url = services[name]["environment"]["DATABASE_URL"]
        assert "@pgbouncer:6432/" in url, f"{name} must go through PgBouncer, not {url}"
    assert services["pgbouncer"]["environment"]["POOL_MODE"] == "transaction"
    assert "DIRECT_DATABASE_URL" in services["migrate"]["command"][-1]  # DDL goes straight to PostgreSQL


def test_every_process_waits_for_what_it_needs(compose):
    services = compose["services"]
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["pgbouncer"]["condition"] == "service_healthy"
    for name in ("postgres", "pgbouncer", "redis", "web"):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"


def test_the_postgres_init_script_creates_the_role_with_its_timeouts():
    role = f"compose_{uuid.uuid4().hex[:8]}"
    script = (ROOT / "deploy/postgres/init.sh").read_text()
    # The container mounts deploy/postgres at /deploy/postgres and connects over its socket; here: TCP.
    script = script.replace("/deploy/postgres/", f"{ROOT}/deploy/postgres/")
    script = script.replace('--username "$POSTGRES_USER"', '-h 127.0.0.1 --username "$POSTGRES_USER"')
    env = {**os.environ, "POSTGRES_USER": "postgres", "APP_DB_USER": role, "APP_DB_NAME": role, "APP_DB_PASSWORD": "x"}
    result = subprocess.run(["sh"], input=script, env=env, capture_output=True, text=True, timeout=60, check=False)
    try:
        assert result.returncode == 0, result.stderr
        with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres") as conn:
            row = conn.execute("SELECT rolconfig FROM pg_roles WHERE rolname = %s", [role]).fetchone()
        assert row is not None
        assert {"statement_timeout=5s", "lock_timeout=3s", "idle_in_transaction_session_timeout=30s"} <= set(row[0])
    finally:
        with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{role}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')
