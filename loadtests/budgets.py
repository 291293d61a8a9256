"""The latency budgets a run must meet, and the judgement of a window of requests against them.

Budgets are p95 per endpoint class, measured on this 2-core machine with the load generator, PostgreSQL,
PgBouncer, Redis, gunicorn and the Celery worker all sharing the two cores (see loadtests/README.md for the
measurements they come from). A pass also needs zero 5xx, zero unexpected outcomes and every invariant.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# p95 in milliseconds, per class. Override one with LOAD_BUDGET_<CLASS>_P95_MS (e.g. for a faster machine).
P95_BUDGETS_MS: dict[str, float] = {
    # Catalog pages and API reads, order reads.
    "reads": float(os.environ.get("LOAD_BUDGET_READS_P95_MS", "800")),
    # Order placement, edits, cancels: a transaction with row locks.
    "writes": float(os.environ.get("LOAD_BUDGET_WRITES_P95_MS", "1000")),
    # Sign-in and registration: argon2 is slow on purpose (~0.2 s of CPU per hash), so they get their own class.
    "auth": float(os.environ.get("LOAD_BUDGET_AUTH_P95_MS", "3000")),
}
MAX_5XX = 0
MAX_UNEXPECTED = 0


def endpoint_class(method: str, name: str) -> str:
    if "/auth/" in name or "/accounts/login" in name or "/accounts/signup" in name or "/accounts/register" in name:
        return "auth"
    if method == "CHECK":
        return "check"
    return "reads" if method in ("GET", "HEAD") else "writes"


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (what locust reports too); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return float(ordered[rank - 1])


@dataclass
class Sample:
    t: float  # when the request started, seconds since the epoch
    name: str
    method: str
    status: int
    outcome: str
    expected: bool
    response_ms: float
    retry_after: bool

    @property
    def endpoint_class(self) -> str:
        return endpoint_class(self.method, self.name)


@dataclass
class Judgement:
    ok: bool
    p95_ms: dict[str, float]
    server_errors: int
    unexpected: int
    reasons: list[str]


def judge(samples: Iterable[Sample], *, shed_ok: bool = False) -> Judgement:
    """Do these requests meet the budgets? `shed_ok` counts a 503 with Retry-After as a refusal, not a 5xx."""
    by_class: dict[str, list[float]] = {}
    server_errors = 0
    unexpected = 0
    for sample in samples:
        if sample.method != "CHECK":
            by_class.setdefault(sample.endpoint_class, []).append(sample.response_ms)
        if sample.status >= 500 and not (shed_ok and sample.status == 503 and sample.retry_after):
            server_errors += 1
        if not sample.expected:
            unexpected += 1
    p95 = {name: round(percentile(values, 0.95), 1) for name, values in sorted(by_class.items())}
    reasons = [
        f"{name} p95 {p95[name]:.0f} ms > {budget:.0f} ms"
        for name, budget in P95_BUDGETS_MS.items()
        if name in p95 and p95[name] > budget
    ]
    if server_errors > MAX_5XX:
        reasons.append(f"{server_errors} server errors (5xx)")
    if unexpected > MAX_UNEXPECTED:
        reasons.append(f"{unexpected} unexpected outcomes")
    return Judgement(ok=not reasons, p95_ms=p95, server_errors=server_errors, unexpected=unexpected, reasons=reasons)


def budgets_doc() -> dict[str, object]:
    return {
        "p95_ms": dict(P95_BUDGETS_MS),
        "max_5xx": MAX_5XX,
        "max_unexpected_failures": MAX_UNEXPECTED,
    }
