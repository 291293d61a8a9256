"""`make workshop-run MODE=...`, `make workshop-check MODE=...`, and the teacher page's background runs.

    python -m workshop.run --mode races              # a private stack on its own database, the standard preset
    python -m workshop.run --mode races --check      # the fix-it track: exit 0 once the (edited) twin is clean
    HOST=http://127.0.0.1:8000 TWIN_HOST=http://127.0.0.1:8001 python -m workshop.run --mode races  # a `make workshop`
    python -m workshop.run --run-id 12               # what /workshop/ starts: mode, seat and kind come from the run

A run: the stack (unless HOST is given), reset and seed the mode for the seat, the mode's set-up (capacity: a
slow payment provider), locust with the same seeded users on both sides at the same time, an audit every two
seconds (the live chart), the mode's own measurements (n-plus-one: the catalog grows and both lists are probed;
frontend-state: the browser script), the final audit, and the scorecard, printed side by side and written to
workshop/results/<mode>/scorecard.json. Exit 0 when the twin broke and the fix held (with --check: when the twin
is clean), 1 otherwise, 2 when the run itself could not happen.

Environment: WORKSHOP_SIZE=standard|small, WORKSHOP_USERS, WORKSHOP_DURATION_S, WORKSHOP_SEAT, WORKSHOP_RACE_WINDOW_MS,
WORKSHOP_DB_NAME (private stack, default shop_workshop), WORKSHOP_FRESH_DB=1, APP_PORT, TWIN_PORT, PROVIDER_PORT,
WORKSHOP_RESULTS_DIR.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import django

from loadtests.stack import database_prepare, free_port
from workshop.stack import WorkshopStack, twin_role_ensure

ROOT = Path(__file__).resolve().parent.parent
STARTED = time.monotonic()
# A room on one machine: at most this many private-stack runs at once (each is a dozen processes on shared CPUs).
SLOTS = int(os.environ.get("WORKSHOP_SLOTS") or 2)


def say(message: str) -> None:
    print(f"== [{time.monotonic() - STARTED:5.1f}s] {message}", flush=True)


def _results_root() -> Path:
    return Path(os.environ.get("WORKSHOP_RESULTS_DIR") or Path(__file__).resolve().parent / "results")


@contextlib.contextmanager
def machine_slot() -> Iterator[None]:
    """Wait for one of SLOTS machine-wide slots (lock files in /tmp, released when this process ends)."""
    announced = False
    while True:
        for number in range(SLOTS):
            handle = open(f"/tmp/hardened-shop-workshop-slot-{number}.lock", "w")  # noqa: SIM115, S108
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield
            finally:
                handle.close()
            return
        if not announced:
            say(f"{SLOTS} workshop runs are going on this machine; waiting for one to finish")
            announced = True
        time.sleep(2)


def _private_stack(log_dir: Path) -> WorkshopStack:
    # One database per clone: a room of students on one machine each run their own checks.
    db_name = (
        os.environ.get("WORKSHOP_DB_NAME") or f"shop_workshop_{hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]}"
    )
    say(f"private stack: database {db_name} (migrating), shop + twins' server, Celery worker, provider, redis")
    database_prepare(db_name, fresh=os.environ.get("WORKSHOP_FRESH_DB") == "1", log=log_dir / "migrate.log")
    problem = twin_role_ensure(
        role=os.environ.get("WORKSHOP_TWIN_DB_USER", "shop_workshop_twin"),
        connection_limit=int(os.environ.get("WORKSHOP_TWIN_DB_CONNECTIONS", "5")),
    )
    if problem:
        say(f"WARNING: the capacity twin's database role could not be set up: {problem}")
    ports = {name: int(os.environ[name]) for name in ("APP_PORT", "TWIN_PORT", "PROVIDER_PORT") if os.environ.get(name)}
    stack = WorkshopStack(
        db_name=db_name,
        app_port=ports.get("APP_PORT") or free_port(),
        provider_port=ports.get("PROVIDER_PORT") or free_port(),
        twin_port=ports.get("TWIN_PORT") or free_port(),
        log_dir=log_dir / "stack",
    ).start(timeout_s=180)
    # This process seeds and audits the stack's database, and its seeded orders' payments go to its queue.
    os.environ.update(
        DATABASE_URL=stack.database_url,
        REDIS_URL=stack.redis_url,
        CELERY_BROKER_URL=stack.redis_url,
        PAYMENT_PROVIDER_URL=stack.provider_url,
        WORKSHOP_SHOP_URL=stack.host,
        WORKSHOP_TWIN_URL=stack.twin_host,
    )
    say(f"stack ready: shop {stack.host}, twins {stack.twin_host}")
    return stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", help="races, n-plus-one, capacity, authorization, frontend-state, observability")
    parser.add_argument("--check", action="store_true", help="fix-it track: pass when the twin is clean")
    parser.add_argument("--run-id", type=int, help="a run created by the teacher page")
    parser.add_argument("--seat", default=os.environ.get("WORKSHOP_SEAT") or "cli")
    parser.add_argument("--size", default=os.environ.get("WORKSHOP_SIZE") or "", help="standard (default) or small")
    args = parser.parse_args()
    if not args.run_id and not args.mode:
        parser.error("--mode is required (or --run-id)")

    # `kill` (or the teacher's Ctrl-C) stops a private stack too: SIGTERM unwinds like an exit, through `finally`.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    os.environ["WORKSHOP_ENABLED"] = "true"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    host = os.environ.get("HOST") or ""
    stack: WorkshopStack | None = None
    scratch = _results_root() / (args.mode or "runs") / "last"
    if not args.run_id:
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
    private = not args.run_id and not host
    with machine_slot() if private else contextlib.nullcontext():
        try:
            if private:
                stack = _private_stack(scratch)
            django.setup()
            # Imported once Django is set up: a private stack decides above which database this process talks to.
            from workshop.scenario import run_mode

            code = run_mode(
                mode=args.mode,
                run_id=args.run_id,
                check=args.check,
                seat=args.seat,
                size=args.size,
                host=host,
                scratch=scratch,
            )
        except Exception as error:
            say(f"the run could not complete: {error}")
            code = 2
        finally:
            if stack is not None:
                stack.stop()
    sys.exit(code)


if __name__ == "__main__":
    main()
