"""The run's report: index.html and the progress line say what the samples say, and fail when the run failed.

No load is run here: each test builds the samples a run would have recorded (one with a 500 in it, one with a
broken invariant, one with load shed), puts them through the same functions `loadtests/run.py` calls, and reads
the page back.
"""

from __future__ import annotations

import re
from pathlib import Path

from loadtests import index_page, report
from loadtests.budgets import Sample
from loadtests.machine import worker_accounting
from loadtests.progress import ProgressTally, progress_line

T0 = 1_800_000_000.0


def sample(t: float, *, status: int = 200, ms: float = 20.0, method: str = "GET", **overrides: object) -> Sample:
    fields: dict[str, object] = {
        "t": T0 + t,
        "name": "/api/v1/products/",
        "method": method,
        "status": status,
        "outcome": str(status),
        "expected": status < 500,
        "response_ms": ms,
        "retry_after": False,
    }
    fields.update(overrides)
    return Sample(**fields)  # type: ignore[arg-type]


def healthy_run(seconds: int = 30) -> list[Sample]:
    return [sample(t / 10, ms=10 + t % 40) for t in range(seconds * 10)]


INVARIANTS_OK = {"no_product_oversold": {"ok": True, "detail": "3 rush products: 5 of 5 sold"}}
MACHINE = {
    "wall_s": 30.0,
    "cores": 2,
    "machine_busy_pct": 61.0,
    "cpu_seconds": {"shop web": 20.0, "everything else on the machine": 3.0},
    "load_average_mean": 1.2,
    "worker": worker_accounting(
        {},
        {
            "payments.tasks.payment_capture_task": {"runs": 310.0, "succeeded": 300.0, "cpu_s": 1.8},
            "mail.tasks.mail_deliver_task": {"runs": 600.0, "succeeded": 600.0, "cpu_s": 3.0},
        },
        worker_cpu_s=12.0,
    ),
}


def page(samples: list[Sample], *, invariants: dict[str, dict[str, object]], stress: dict | None = None) -> str:
    summary = report.summarize(samples, users=10, spawn_rate=5, duration_s=30, invariants=invariants)
    return index_page.render_index(
        title="test run",
        summary=summary,
        samples=samples,
        machine=MACHINE,
        stress=stress,
        charts=["throughput.png"],
        verdict=summary["verdict"],
    )


def verdict_of(html: str) -> str:
    found = re.search(r'<p class="verdict (pass|fail)">(PASS|FAIL)</p>', html)
    assert found, "the page states no verdict"
    return found.group(2)


def test_a_clean_run_reads_pass_with_budgets_invariants_machine_and_charts() -> None:
    html = page(healthy_run(), invariants=INVARIANTS_OK)

    assert verdict_of(html) == "PASS"
    assert "no_product_oversold" in html and "3 rush products: 5 of 5 sold" in html
    assert "p95 &le; 800 ms" in html  # the reads budget, next to what was measured
    assert "shop web" in html and "61.0 % busy" in html
    assert "The worker: 12.0 CPU-s for 300 capture tasks = 40.0 ms per capture" in html
    assert "mail_deliver_task 600 runs x 5.0 ms" in html
    assert html.count("<svg") == 2 and "<polyline" in html
    assert 'class="fail"' not in html


def test_a_single_500_fails_the_page_and_names_the_budget() -> None:
    samples = healthy_run()
    samples.insert(100, sample(10.05, status=500))

    html = page(samples, invariants=INVARIANTS_OK)

    assert verdict_of(html) == "FAIL"
    assert "Failed: server_errors, unexpected_failures" in html


def test_a_broken_invariant_fails_the_page_with_its_detail() -> None:
    broken = {**INVARIANTS_OK, "charged_exactly_once": {"ok": False, "detail": "order 41 charged twice"}}

    html = page(healthy_run(), invariants=broken)

    assert verdict_of(html) == "FAIL"
    assert '<td class="fail">FAIL</td><td>order 41 charged twice</td>' in html


def test_no_audit_is_no_pass() -> None:
    html = page(healthy_run(), invariants={})

    assert verdict_of(html) == "FAIL"
    assert "No invariant was checked" in html


def test_the_page_needs_no_network_and_escapes_what_the_run_recorded() -> None:
    samples = healthy_run()
    samples.append(sample(29.9, name="/search?q=<script>alert(1)</script>"))

    html = page(samples, invariants=INVARIANTS_OK)

    assert "<script" not in html
    assert "&lt;script&gt;" in html
    # No CDN, no web font, no remote image: the only URL is the SVG namespace.
    assert set(re.findall(r"https?://[^\"' )]+", html)) == {"http://www.w3.org/2000/svg"}


def test_stress_section_shows_each_step_and_the_knee(tmp_path: Path) -> None:
    samples = healthy_run(60)
    stress = report.stress_steps(samples, t0=T0, step_s=30, steps=[50, 100])

    path = index_page.write_index(
        tmp_path,
        title="stress",
        summary=report.summarize(samples, users=100, spawn_rate=5, duration_s=60, invariants=INVARIANTS_OK),
        samples=samples,
        machine=None,
        stress=stress,
        charts=[],
        verdict="pass",
    )

    html = path.read_text()
    assert path.name == "index.html"
    assert "Knee: 100 users at 10.0 rps" in html
    assert html.count("<svg") == 3


def test_the_throughput_series_counts_each_window() -> None:
    samples = [sample(0.1), sample(0.2), sample(4.9, status=429), sample(5.5, status=503, retry_after=True)]

    series = index_page.time_series(samples)

    assert series["rps"] == [(0.0, 3 / 5), (5.0, 1 / 5)]
    assert series["refused_429_per_s"] == [(0.0, 1 / 5), (5.0, 0.0)]
    assert series["server_errors_per_s"] == [(0.0, 0.0), (5.0, 1 / 5)]


def test_progress_line_reports_the_window_and_keeps_totals() -> None:
    tally = ProgressTally()
    for t in range(20):
        tally.add(sample(t / 2, ms=100.0 if t < 18 else 900.0))
    tally.add(sample(9.9, status=429, outcome="429 throttled"))
    tally.add(sample(9.95, status=503, retry_after=True, expected=True))
    tally.add(sample(9.99, status=500))

    first = tally.line(elapsed_s=10, users=150, window_s=10)
    second = tally.line(elapsed_s=20, users=150, window_s=10)

    assert "users  150" in first and "rps    2.3" in first
    assert "p95   900 ms" in first  # 23 requests: the 22nd fastest (nearest rank) is one of the two 900 ms ones
    assert "5xx 2 (shed 1)  429 1  unexpected 1" in first
    assert "| total 23 requests, 2 5xx, 1 unexpected" in first
    assert "rps    0.0" in second and "| total 23 requests, 2 5xx, 1 unexpected" in second


def test_progress_line_leaves_client_checks_out_of_the_request_figures() -> None:
    window = [sample(0), sample(1, method="CHECK", status=0, expected=False, name="CHECK one order per key")]

    line, requests, server_errors, unexpected = progress_line(window, elapsed_s=10, users=1, window_s=10)

    assert (requests, server_errors, unexpected) == (1, 0, 1)
    assert "unexpected 1" in line
