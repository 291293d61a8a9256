"""The line a run prints every 10 seconds, so the person who started it sees the shop while it is under load.

    [progress]    40s  users  150  rps   78.3  p95   312 ms  5xx 0 (shed 0)  429 3  unexpected 0
        | total 3,100 requests, 0 5xx, 0 unexpected      (on the same line)

The figures on the left are the last window's (10 s by default, `LOAD_PROGRESS_S`); the totals since the start
follow. locust prints the line (locustfile.py); `loadtests/run.py` echoes it from locust's output to the terminal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from loadtests.budgets import Sample, percentile

PREFIX = "[progress]"


@dataclass
class ProgressTally:
    """Requests since the last line, and the totals since the start of the run."""

    window: list[Sample] = field(default_factory=list)
    total_requests: int = 0
    total_server_errors: int = 0
    total_unexpected: int = 0

    def add(self, sample: Sample) -> None:
        self.window.append(sample)

    def line(self, *, elapsed_s: float, users: int, window_s: float) -> str:
        """The progress line for the window that just ended; the window starts over."""
        window, self.window = self.window, []
        line, requests, server_errors, unexpected = progress_line(
            window, elapsed_s=elapsed_s, users=users, window_s=window_s
        )
        self.total_requests += requests
        self.total_server_errors += server_errors
        self.total_unexpected += unexpected
        return (
            f"{line}  | total {self.total_requests:,} requests, {self.total_server_errors} 5xx, "
            f"{self.total_unexpected} unexpected"
        )


def progress_line(
    window: Sequence[Sample], *, elapsed_s: float, users: int, window_s: float
) -> tuple[str, int, int, int]:
    """One window's line, and its counts of requests, 5xx and unexpected outcomes (for the totals).

    A 503 with Retry-After (load shed, core/shedding.py) is a 5xx too, and also counted apart as `shed`: the
    line says what the shop answered; the verdict at the end decides which refusals were polite.
    """
    requests = [sample for sample in window if sample.method != "CHECK"]
    server_errors = sum(1 for sample in requests if sample.status >= 500)
    shed = sum(1 for sample in requests if sample.status == 503 and sample.retry_after)
    refused_429 = sum(1 for sample in requests if sample.status == 429)
    unexpected = sum(1 for sample in window if not sample.expected)
    p95 = percentile([sample.response_ms for sample in requests], 0.95)
    rps = len(requests) / window_s if window_s > 0 else 0.0
    line = (
        f"{PREFIX} {elapsed_s:5.0f}s  users {users:>4}  rps {rps:6.1f}  p95 {p95:5.0f} ms  "
        f"5xx {server_errors} (shed {shed})  429 {refused_429}  unexpected {unexpected}"
    )
    return line, len(requests), server_errors, unexpected
