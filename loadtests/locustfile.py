"""Hardened Shop load suite: realistic, hostile traffic. Run it with `make loadtest` (see loadtests/README.md).

User classes (weights in brackets): Browser [6] reads the catalog; ApiBuyer [4] signs in and buys, double-
clicking, retrying after timeouts, reusing keys and abandoning; RushBuyer [2] fights over a few products with
little stock; WebBuyer [2] buys through the HTML cart and checkout with CSRF; Editor [1] races edits of one
order with If-Match; Curious [1] probes other customers' orders; Canceller [1] cancels, sometimes twice.

Environment: LOAD_FIXTURE (seed output: accounts, product ids), LOAD_LEDGER_DIR (where the ledger and the
per-request samples go), LOAD_SHAPE=steps with LOAD_STEPS / LOAD_STEP_S for the stress ramp.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Any

import gevent
from locust import LoadTestShape, events
from locust.env import Environment
from locust.runners import MasterRunner

from loadtests.adversaries import Canceller, Curious, Editor
from loadtests.browsers import Browser
from loadtests.budgets import Sample, judge
from loadtests.buyers import ApiBuyer, RushBuyer
from loadtests.common import CATALOG, LEDGER, load_fixture
from loadtests.progress import ProgressTally
from loadtests.web import WebBuyer, discover_web

__all__ = ["ApiBuyer", "Browser", "Canceller", "Curious", "Editor", "RushBuyer", "WebBuyer"]


class SampleRecorder:
    """Every request as one CSV row (per process), so the report computes exactly what it claims."""

    FIELDS = ["t", "name", "method", "status", "outcome", "expected", "response_ms", "retry_after"]

    def __init__(self) -> None:
        self.handle: Any = None
        self.writer: Any = None
        self.recent: list[Sample] = []  # kept in memory for the stress shape's live judgement

    def open(self) -> None:
        directory = Path(os.environ.get("LOAD_LEDGER_DIR", "loadtests/results/ledger"))
        directory.mkdir(parents=True, exist_ok=True)
        self.handle = (directory / f"samples-{os.getpid()}.csv").open("w", newline="")
        self.writer = csv.writer(self.handle)
        self.writer.writerow(self.FIELDS)

    def record(self, sample: Sample) -> None:
        if self.writer is None:
            self.open()
        self.writer.writerow(
            [
                f"{sample.t:.3f}",
                sample.name,
                sample.method,
                sample.status,
                sample.outcome,
                int(sample.expected),
                f"{sample.response_ms:.1f}",
                int(sample.retry_after),
            ]
        )
        if STRESS:
            self.recent.append(sample)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
            self.writer = None


RECORDER = SampleRecorder()
STRESS = os.environ.get("LOAD_SHAPE") == "steps"
PROGRESS = ProgressTally()
PROGRESS_S = float(os.environ.get("LOAD_PROGRESS_S", "10"))


def print_progress(environment: Environment) -> None:
    """Minutes of silence: every PROGRESS_S seconds, one line with the last window's users, rps, p95 and errors."""
    started = time.monotonic()
    while True:
        gevent.sleep(PROGRESS_S)
        users = environment.runner.user_count if environment.runner is not None else 0
        print(PROGRESS.line(elapsed_s=time.monotonic() - started, users=users, window_s=PROGRESS_S), flush=True)


@events.request.add_listener
def on_request(
    request_type: str,
    name: str,
    response_time: float,
    response: Any = None,
    exception: Any = None,
    context: dict[str, Any] | None = None,
    start_time: float | None = None,
    **_: Any,
) -> None:
    context = context or {}
    status = int(getattr(response, "status_code", 0) or 0) if response is not None else 0
    outcome = context.get("outcome") or (str(status) if status else f"error {type(exception).__name__}")
    sample = Sample(
        t=start_time or time.time(),
        name=name,
        method=request_type,
        status=status,
        outcome=outcome,
        expected=bool(context.get("expected", exception is None)),
        response_ms=float(response_time or 0),
        retry_after=bool(context.get("retry_after", False)),
    )
    RECORDER.record(sample)
    PROGRESS.add(sample)


@events.test_start.add_listener
def on_test_start(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        return
    if not load_fixture(os.environ.get("LOAD_FIXTURE")):
        discover_from_api(environment)
    discover_web(environment)
    RECORDER.open()
    gevent.spawn(print_progress, environment)
    meta = Path(os.environ.get("LOAD_LEDGER_DIR", "loadtests/results/ledger")) / "meta.json"
    meta.write_text(
        json.dumps({"started_at": time.time(), "web_pages": CATALOG.web_pages, "web_checkout": CATALOG.web_checkout})
    )


@events.quitting.add_listener
def on_quitting(environment: Environment, **_: Any) -> None:
    RECORDER.close()
    LEDGER.close()


def discover_from_api(environment: Environment) -> None:
    """No seed fixture (a deployed target): learn products from the public API; accounts come from env."""
    import urllib.request

    host = (environment.host or "").rstrip("/")
    with urllib.request.urlopen(f"{host}/api/v1/products/?page_size=100", timeout=10) as response:
        products = json.load(response)["results"]
    with urllib.request.urlopen(f"{host}/api/v1/categories/", timeout=10) as response:
        CATALOG.category_slugs = [category["slug"] for category in json.load(response)["results"]]
    CATALOG.product_ids = [p["id"] for p in products if p["stock_available"] > 20]
    CATALOG.rush_product_ids = [p["id"] for p in products if 0 < p["stock_available"] <= 20][:3]
    CATALOG.product_slugs = {p["id"]: p["slug"] for p in products}
    CATALOG.buyers = [name for name in os.environ.get("LOAD_BUYERS", "alice,bob").split(",") if name]
    CATALOG.curious = [name for name in os.environ.get("LOAD_CURIOUS", "charlie").split(",") if name]


if STRESS:

    class StepShape(LoadTestShape):
        """Stress: hold each user count for LOAD_STEP_S seconds; stop one step after the budgets first break."""

        steps = [int(n) for n in os.environ.get("LOAD_STEPS", "50,100,150,200,250,300,400").split(",")]
        step_s = float(os.environ.get("LOAD_STEP_S", "30"))
        spawn_rate = float(os.environ.get("LOAD_SPAWN_RATE", "25"))

        def __init__(self) -> None:
            super().__init__()
            self.broken_at: int | None = None
            self.judged = -1
            self.finished = False

        def tick(self) -> tuple[int, float] | None:
            run_time = self.get_run_time()
            step = int(run_time // self.step_s)
            if step - 1 > self.judged:
                self.judge_step(step - 1)
            if step >= len(self.steps) or (self.broken_at is not None and step > self.broken_at + 1):
                if not self.finished:
                    # The report judges only the steps that ran in full; the stopping users make no step.
                    self.finished = True
                    meta = Path(os.environ.get("LOAD_LEDGER_DIR", "loadtests/results/ledger")) / "stress-steps.json"
                    meta.write_text(json.dumps({"steps_run": step}))
                return None
            return self.steps[step], self.spawn_rate

        def judge_step(self, step: int) -> None:
            self.judged = step
            if step >= len(self.steps):
                return
            window, RECORDER.recent = RECORDER.recent, []
            verdict = judge(window, shed_ok=True)
            print(
                f"[stress] step {step}: {self.steps[step]} users, {len(window)} requests, "
                f"p95 {verdict.p95_ms}, {'ok' if verdict.ok else 'BROKEN: ' + '; '.join(verdict.reasons)}",
                flush=True,
            )
            if not verdict.ok and self.broken_at is None:
                self.broken_at = step
