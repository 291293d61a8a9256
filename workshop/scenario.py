"""One workshop run of one mode against a running shop and twins' server: seed, load, audit, scorecard.

Called by workshop/run.py once Django is set up (for a private stack, after it chose the stack's database).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from django.conf import settings

from workshop.audit import SETTLE_S, audit
from workshop.browser import edit_pages, spinner_check
from workshop.models import Run, RunKind
from workshop.presets import preset_for
from workshop.scorecard import scorecard_build, scorecard_text, scorecard_write, verdict
from workshop.services import (
    catalog_grow,
    run_add_sample,
    run_create,
    run_finish,
    run_mark,
    runs_expire,
    workshop_prepare,
)

ROOT = Path(__file__).resolve().parent.parent
STARTED = time.monotonic()
SAMPLE_EVERY_S = 2.0
TIMING = re.compile(r'desc="(\d+) queries"')


def say(message: str) -> None:
    print(f"== [{time.monotonic() - STARTED:5.1f}s] {message}", flush=True)


def results_root() -> Path:
    return Path(os.environ.get("WORKSHOP_RESULTS_DIR") or ROOT / "workshop" / "results")


class DriverLedger:
    """The run's own ledger lines (probes, the browser), beside the locust users' files, in the same format."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "driver.jsonl"
        self.lock = threading.Lock()

    def write(self, kind: str, side: str, **fields: Any) -> None:
        line = json.dumps({"kind": kind, "side": side, "t": round(time.time(), 3), **fields}, sort_keys=True)
        with self.lock, self.path.open("a") as handle:
            handle.write(line + "\n")


def provider_control(provider_url: str, settings: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - the provider's http URL
        f"{provider_url}/_control",
        data=json.dumps(settings).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - the provider's http URL
        answer: dict[str, Any] = json.load(response)
        return answer


def query_count(url: str, timeout_s: float = 300) -> int | None:
    """The query count the shop's Server-Timing header reports for one GET (None: no answer, or no header)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - the stack's http URL
            response.read()
            match = TIMING.search(response.headers.get("Server-Timing", ""))
    except OSError:
        return None
    return int(match.group(1)) if match else None


class Scenario:
    """One run of one mode. `hosts` are the shop's and the twins' base URLs."""

    def __init__(
        self, *, run: Any, fixture: dict[str, Any], hosts: dict[str, str], out: Path, sides: list[str]
    ) -> None:
        self.run = run
        self.mode: str = run.mode
        self.seat: str = run.seat
        self.fixture = fixture
        self.preset = fixture["preset"]
        self.hosts = hosts
        self.out = out
        self.ledger_dir = out / "ledger"
        self.ledger = DriverLedger(self.ledger_dir)
        self.sides = sides
        self.exam = run.kind == "exam"
        self.twin_prefix = "/workshop/exam/twin/" if self.exam else f"/workshop/twin/{self.mode}/"
        self.background: list[threading.Thread] = []
        self.restore: list[Callable[[], object]] = []

    # --- per-mode set-up and measurements --------------------------------------------------------------------

    def list_url(self, side: str) -> str:
        category = self.fixture["sides"][side]["category"]
        if side == "twin":
            return f"{self.hosts['twin']}{self.twin_prefix}products/?category={category}"
        return f"{self.hosts['fixed']}/api/v1/products/?category={category}&page_size=100"

    def probe_lists(self, rows: int, *, warm: tuple[str, ...] = ("twin", "fixed")) -> None:
        def probe(side: str) -> None:
            if side in warm:
                query_count(self.list_url(side))  # a fresh worker's first request also opens its connection
            queries = query_count(self.list_url(side))
            self.ledger.write("queries", side, rows=rows, queries=queries)
            say(f"n-plus-one: {side} list at {rows} products ran {queries} queries")

        threads = [threading.Thread(target=probe, args=(side,), daemon=True) for side in self.sides]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)

    def before_load(self) -> None:
        if self.mode == "capacity" and self.preset["provider_latency_ms"]:
            provider = settings.PAYMENT_PROVIDER_URL
            previous = provider_control(provider, {"latency_ms": self.preset["provider_latency_ms"]})
            say(f"capacity: the payment provider now takes {self.preset['provider_latency_ms']} ms per call")
            self.restore.append(lambda: provider_control(provider, {"latency_ms": previous.get("latency_ms", 0)}))
        if self.mode == "n-plus-one":
            self.probe_lists(self.preset["rows_small"])
        if self.mode == "frontend-state" and not self.exam:
            thread = threading.Thread(target=self.browser_script, name="browser", daemon=True)
            thread.start()
            self.background.append(thread)

    def during_load(self, elapsed_s: float) -> None:
        if (
            self.mode == "n-plus-one"
            and elapsed_s >= self.preset["duration_s"] / 2
            and not getattr(self, "grown", False)
        ):
            self.grown = True
            thread = threading.Thread(target=self.grow_catalog, name="grow", daemon=True)
            thread.start()
            self.background.append(thread)

    def grow_catalog(self) -> None:
        """Both catalogs grow at the same moment, in two steps (a tenth, then all), each followed by the probes:
        the chart climbs as the twin's query count does, instead of waiting for its slowest page."""
        large = int(self.preset["rows_large"])
        for rows in (max(large // 10, int(self.preset["rows_small"]) + 1), large):
            for side in self.sides:
                catalog_grow(seat=self.seat, side=side, rows=rows)  # type: ignore[arg-type]
            say(f"n-plus-one: both catalogs grew to {rows} products")
            # The twin's warm-up would cost as much as its measurement (2 queries per product): one request will do.
            self.probe_lists(rows, warm=("fixed",))

    def browser_script(self) -> None:
        pages, cookies = edit_pages(self.fixture, self.twin_prefix)
        try:
            unresolved = spinner_check(
                pages=pages,
                cookies=cookies,
                hosts={side: self.hosts[side] for side in self.sides},
                attempts=int(self.preset["browser_attempts"]),
                patience_s=float(os.environ.get("WORKSHOP_SPINNER_PATIENCE_S", "20")),
                record=self.ledger.write,
                bound_ms=int(os.environ["WORKSHOP_SPINNER_BOUND_MS"])
                if os.environ.get("WORKSHOP_SPINNER_BOUND_MS")
                else None,
            )
            say(f"frontend-state: the browser's hung saves that never resolved: {unresolved}")
        except Exception as error:  # a missing Chromium must not hide the rest of the scorecard
            say(f"frontend-state: the browser script failed: {error!r}")
            self.ledger.write("browser_failed", "twin", error=repr(error))

    # --- the run ---------------------------------------------------------------------------------------------

    def locust(self) -> subprocess.Popen[bytes]:
        roles = ["accounts", "curious"] if self.mode == "authorization" else ["accounts"]
        users = sum(len(self.fixture["sides"][side].get(role, [])) for side in self.sides for role in roles)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "WORKSHOP_MODE": self.mode,
            "WORKSHOP_FIXTURE": str(self.out / "fixture.json"),
            "WORKSHOP_LEDGER_DIR": str(self.ledger_dir),
            "WORKSHOP_TWIN_HOST": self.hosts["twin"],
            "WORKSHOP_FIXED_HOST": self.hosts["fixed"],
            "WORKSHOP_TWIN_PREFIX": self.twin_prefix,
            "WORKSHOP_SIDES": ",".join(self.sides),
        }
        command = [
            str(ROOT / ".venv" / "bin" / "locust"),
            "-f",
            str(ROOT / "workshop" / "load" / "locustfile.py"),
            "--headless",
            "--users",
            str(users),
            "--spawn-rate",
            str(max(float(self.preset["spawn_rate"]) * len(self.sides), 1.0)),
            "--run-time",
            f"{int(self.preset['duration_s'])}s",
            "--stop-timeout",
            "15",
            "--only-summary",
            "--loglevel",
            "WARNING",
        ]
        log = (self.out / "locust.log").open("w")
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603

    def revealed(self) -> bool:
        return Run.objects.filter(pk=self.run.pk, revealed_at__isnull=False).exists()

    def sample(self, elapsed_s: float) -> dict[str, Any]:
        counters = audit(seat=self.seat, mode=self.mode, ledger_dir=self.ledger_dir, sides=tuple(self.sides))  # type: ignore[arg-type]
        point = {"t": round(elapsed_s, 1), **counters}
        run_add_sample(run_id=self.run.pk, sample=point)
        return point

    def execute(self) -> dict[str, dict[str, int]]:
        (self.out / "fixture.json").write_text(json.dumps(self.fixture))
        run_mark(run_id=self.run.pk, status="running")
        try:
            self.before_load()
            say(
                f"locust: {self.preset['users']} seeded users per side ({', '.join(self.sides)}), "
                f"{self.preset['duration_s']:.0f}s, twin at {self.hosts['twin']}{self.twin_prefix}, "
                f"fixed at {self.hosts['fixed']}"
            )
            started = time.monotonic()
            process = self.locust()
            self.restore.append(lambda: _stop(process))  # whatever happens, never leave locust running
            while process.poll() is None:
                time.sleep(SAMPLE_EVERY_S)
                elapsed = time.monotonic() - started
                self.during_load(elapsed)
                point = self.sample(elapsed)
                say(f"t={point['t']:>5}s  " + "  ".join(f"{side} {point[side]}" for side in self.sides))
                if self.exam and self.revealed():
                    say("exam revealed: stopping the load")
                    process.terminate()  # locust stops its users and exits 0
                    process.wait(timeout=60)
            if process.returncode not in (0, -15):
                tail = (self.out / "locust.log").read_text()[-2000:]
                raise RuntimeError(f"locust exited with {process.returncode}:\n{tail}")
            for thread in self.background:
                thread.join(timeout=300)
        finally:
            for undo in self.restore:
                undo()
        time.sleep(SETTLE_S + 0.5)  # the last twin requests settle before the final count
        return self.sample(time.monotonic() - started)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=30)


def run_mode(
    *, mode: str | None, run_id: int | None, check: bool, seat: str, size: str, host: str, scratch: Path
) -> int:
    """A run from the command line (mode) or from the teacher page (run_id). Returns the exit code."""
    runs_expire()
    size_arg = size
    if run_id:
        run = Run.objects.get(pk=run_id)
        size = run.params.get("size", "standard")
        out = results_root() / run.mode / "runs" / f"{run.pk}-{run.seat}"  # the page's launcher logs here too
        out.mkdir(parents=True, exist_ok=True)
    else:
        assert mode is not None, "a command-line run names its mode"
        size = size_arg or ("small" if check else "standard")
        run = run_create(mode=mode, seat=seat, params={"size": size, "check": check})
        out = scratch
    hosts = {
        "fixed": host or settings.WORKSHOP_SHOP_URL,
        "twin": os.environ.get("TWIN_HOST") or settings.WORKSHOP_TWIN_URL,
    }
    preset = preset_for(run.mode, size)
    if run.kind == RunKind.EXAM:
        preset = replace(preset, duration_s=float(run.params.get("duration_s", 240)))
    sides = ["twin"] if run.kind == RunKind.EXAM else ["twin", "fixed"]
    card = None
    code, sentence = 2, "the run could not complete"
    try:
        say(f"{run.kind} {run.mode} for seat {run.seat}: reset, then seeding both sides alike ({size} preset)")
        fixture = workshop_prepare(seat=run.seat, mode=run.mode, preset=preset)
        counters = Scenario(run=run, fixture=fixture, hosts=hosts, out=out, sides=sides).execute()
        card = scorecard_build(run.mode, counters)
        code, sentence = verdict(card, check=check)
        if run.kind == RunKind.EXAM:
            code, sentence = 0, "exam over: reveal it on /workshop/"
        print()
        print(scorecard_text(card, title=f"{run.mode}: twin vs fixed, {preset.users} seeded users each, same load"))
        written = scorecard_write(card, out / "scorecard.json")
        if not run_id:
            written = scorecard_write(card, results_root() / run.mode / "scorecard.json")
        print(f"scorecard: {written}")
        print(f"VERDICT: {sentence} (exit {code})")
    finally:
        run_finish(run_id=run.pk, scorecard=card, verdict=sentence, exit_code=code)
    return code
