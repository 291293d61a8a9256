"""Each twin breaks and the fix holds, under the same CI-sized run, scored by the workshop's own data audit.

One private stack for the module (the shop and the twins' own server on a fresh database, a Celery worker, the
payment provider, a redis-server), then `python -m workshop.run --mode <mode> --size small` against it for each
mode, exactly as `make workshop-run HOST=...` runs: seeded users, the same offered load on both sides at the same
time, the scorecard written as `{"mode", "twin": {...}, "fixed": {...}}`. frontend-state includes the real
browser script (Debian's Chromium). The capacity twin's database role gets a connection limit of 2 here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connection

from loadtests.stack import ROOT, database_drop, database_prepare, free_port
from workshop.modes import MODES
from workshop.stack import PG_SUPERUSER, WorkshopStack, twin_role_ensure

pytestmark = pytest.mark.load

# Counters a small run must show on the twin side, every time (capacity's timeouts need more load than CI has).
MUST_BREAK = {slug: set(mode.counter_names) for slug, mode in MODES.items()}
MUST_BREAK["capacity"] = {"responses_5xx"}


@dataclass
class Lab:
    stack: WorkshopStack
    role: str
    results: Path


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    database = f"{connection.settings_dict['TEST']['NAME']}_workshop"
    role = f"{database}_twin"
    artifacts = ROOT / "test-artifacts" / database  # one folder per test database: parallel runs do not collide
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.mkdir(parents=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKSHOP_ENABLED", "true")  # the workshop's own table is migrated with the shop's
        database_prepare(database, fresh=True, log=artifacts / "migrate.log")
    assert twin_role_ensure(role=role, connection_limit=2) is None
    stack = WorkshopStack(
        db_name=database,
        app_port=free_port(),
        provider_port=free_port(),
        gunicorn_workers=2,
        celery_concurrency=1,
        log_dir=artifacts / "stack",
        extra_env={"WORKSHOP_TWIN_DB_USER": role, "WORKSHOP_RACE_WINDOW_MS": "300", "LOG_LEVEL": "WARNING"},
    )
    try:
        stack.start(timeout_s=180)
        yield Lab(stack=stack, role=role, results=artifacts / "results")
    finally:
        stack.stop()
        database_drop(database)
        with psycopg.connect(host="127.0.0.1", user=PG_SUPERUSER, dbname="postgres", autocommit=True) as admin:
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')  # type: ignore[arg-type]


def run_mode(lab: Lab, mode: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    stack = lab.stack
    env = {
        **os.environ,
        "DJANGO_ENV": "development",
        "HOST": stack.host,
        "TWIN_HOST": stack.twin_host,
        "DATABASE_URL": stack.database_url,
        "REDIS_URL": stack.redis_url,
        "CELERY_BROKER_URL": stack.redis_url,
        "PAYMENT_PROVIDER_URL": stack.provider_url,
        "WORKSHOP_TWIN_DB_USER": lab.role,
        "WORKSHOP_RESULTS_DIR": str(lab.results),
        "LOG_LEVEL": "WARNING",
        # The browser waits on the shop's own bound, shortened through the data-bound-ms the shop's script reads.
        "WORKSHOP_SPINNER_BOUND_MS": "2000",
        "WORKSHOP_SPINNER_PATIENCE_S": "6",
    }
    env.pop("FAST_PASSWORD_HASHER", None)
    completed = subprocess.run(
        [sys.executable, "-m", "workshop.run", "--mode", mode, "--size", "small", "--seat", "ci"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    card_path = lab.results / mode / "scorecard.json"
    assert card_path.exists(), f"no scorecard for {mode}:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    return completed, json.loads(card_path.read_text())


class TwinConnections:
    """Samples how many connections the capacity twin's role holds on PostgreSQL, ten times a second."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.most = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.watch, daemon=True)

    def watch(self) -> None:
        with psycopg.connect(host="127.0.0.1", user=PG_SUPERUSER, dbname="postgres", autocommit=True) as admin:
            while not self.done.wait(0.1):
                row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", [self.role]).fetchone()
                self.most = max(self.most, int(row[0]) if row else 0)

    def __enter__(self) -> TwinConnections:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.done.set()
        self.thread.join(timeout=5)


@pytest.mark.parametrize("mode", list(MODES))
def test_the_twin_breaks_and_the_fix_holds_under_the_same_run(lab: Lab, mode: str) -> None:
    with TwinConnections(lab.role) as twin_connections:
        completed, card = run_mode(lab, mode)

    if mode == "capacity":
        # The twin went straight to PostgreSQL, and never held more than its role's share (the real shop's
        # PgBouncer and everyone else on the server kept theirs).
        assert 0 < twin_connections.most <= 2

    names = MODES[mode].counter_names
    assert list(card) == ["mode", "twin", "fixed"] and card["mode"] == mode
    assert list(card["twin"]) == names and list(card["fixed"]) == names
    broken = {name for name, value in card["twin"].items() if value > 0}
    assert MUST_BREAK[mode] <= broken, f"{mode}: the twin did not break on {MUST_BREAK[mode] - broken}: {card}"
    assert all(value == 0 for value in card["fixed"].values()), f"{mode}: the fix broke: {card}"
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert "VERDICT: the twin broke and the fix held (exit 0)" in completed.stdout
