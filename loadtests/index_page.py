"""`index.html`: one page per run that ties the verdict, the budgets, the invariants, where the CPU went and the
charts together. The run prints its path.

Self-contained on purpose: plain HTML, inline CSS and inline SVG charts, no script, no CDN, no font. The page
opens from a results folder copied off a CI box, in a browser without network, and still says everything. The
PNG charts matplotlib drew (report.py) sit beside it and are linked, not needed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from loadtests.budgets import P95_BUDGETS_MS, Sample, percentile
from loadtests.machine import worker_line

WINDOW_S = 5.0
Series = tuple[str, str, Sequence[tuple[float, float]]]  # label, colour, points


def time_series(samples: Sequence[Sample], *, window_s: float = WINDOW_S) -> dict[str, list[tuple[float, float]]]:
    """Per window of `window_s` seconds: requests/s, p95 of all requests and of writes, 429/s, 5xx/s."""
    requests = [sample for sample in samples if sample.method != "CHECK"]
    if not requests:
        return {}
    t0 = requests[0].t
    windows: dict[int, list[Sample]] = defaultdict(list)
    for sample in requests:
        windows[int((sample.t - t0) // window_s)].append(sample)
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for index in range(max(windows) + 1):
        window = windows.get(index, [])
        x = index * window_s
        writes = [s.response_ms for s in window if s.endpoint_class == "writes"]
        series["rps"].append((x, len(window) / window_s))
        series["p95_ms"].append((x, percentile([s.response_ms for s in window], 0.95)))
        series["writes_p95_ms"].append((x, percentile(writes, 0.95)))
        series["refused_429_per_s"].append((x, sum(1 for s in window if s.status == 429) / window_s))
        series["server_errors_per_s"].append((x, sum(1 for s in window if s.status >= 500) / window_s))
    return dict(series)


def svg_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    guides: Sequence[tuple[float, str]] = (),
    width: int = 720,
    height: int = 260,
) -> str:
    """A line chart as inline SVG: axes with min/max ticks, one polyline per series, dotted guide lines."""
    left, right, top, bottom = 56, 16, 28, 40
    points = [point for _, _, values in series for point in values]
    if not points:
        return f'<p class="muted">{escape(title)}: no data</p>'
    x_max = max(x for x, _ in points) or 1.0
    y_max = max([y for _, y in points] + [value for value, _ in guides]) * 1.1 or 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + plot_w * x / x_max

    def sy(y: float) -> float:
        return top + plot_h * (1 - y / y_max)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        f' role="img" aria-label="{escape(title)}">',
        f'<text x="{left}" y="18" class="title">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" class="axis"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" class="axis"/>',
        f'<text x="{left - 6}" y="{top + plot_h}" class="tick" text-anchor="end">0</text>',
        f'<text x="{left - 6}" y="{top + 8}" class="tick" text-anchor="end">{y_max:,.0f}</text>',
        f'<text x="{left + plot_w}" y="{top + plot_h + 16}" class="tick" text-anchor="end">{x_max:,.0f}</text>',
        f'<text x="{left + plot_w / 2}" y="{height - 6}" class="tick" text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="12" y="{top + plot_h / 2}" class="tick" transform="rotate(-90 12 {top + plot_h / 2})"'
        f' text-anchor="middle">{escape(y_label)}</text>',
    ]
    for value, label in guides:
        parts.append(
            f'<line x1="{left}" y1="{sy(value):.1f}" x2="{left + plot_w}" y2="{sy(value):.1f}" class="guide"/>'
            f'<text x="{left + plot_w - 4}" y="{sy(value) - 4:.1f}" class="tick" text-anchor="end">'
            f"{escape(label)}</text>"
        )
    for index, (label, colour, values) in enumerate(series):
        if not values:
            continue
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in values)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
        parts.append(
            f'<text x="{left + 8 + 150 * index}" y="{top + 12}" class="legend" fill="{colour}">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _ok(flag: bool) -> str:
    return '<td class="ok">ok</td>' if flag else '<td class="fail">FAIL</td>'


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(cell if cell.startswith("<td") else f"<td>{cell}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_index(
    *,
    title: str,
    summary: dict[str, Any],
    samples: Sequence[Sample],
    machine: dict[str, Any] | None,
    stress: dict[str, Any] | None,
    charts: Sequence[str],
    verdict: str,
) -> str:
    """The page itself (a pure function of the run's results, so tests can read it without running a load)."""
    passed = verdict.lower() == "pass"
    sections: list[str] = []

    # Verdict first: the one thing every reader wants.
    reasons = [name for name, budget in summary["budgets"].items() if not budget.get("ok", True)]
    sections.append(
        f'<p class="verdict {"pass" if passed else "fail"}">{"PASS" if passed else "FAIL"}</p>'
        + (
            f"<p>{'Over the whole ramp, broken' if stress else 'Failed'}: {escape(', '.join(reasons))}</p>"
            if reasons
            else ""
        )
        + (
            "<p>A stress run passes when, past the knee, the shop refused politely (429/503 with Retry-After) or "
            "answered slower, never with 500s or timeouts, and every invariant held afterwards.</p>"
            if stress
            else ""
        )
        + f"<p>{summary['users']} users, spawn {summary['spawn_rate']}/s, {summary['duration_s']:.0f} s: "
        f"{summary['requests']:,} requests, {summary['rps']} rps, p50 {summary['p50_ms']} ms, "
        f"p95 {summary['p95_ms']} ms, p99 {summary['p99_ms']} ms, {summary['failures']} unexpected outcomes.</p>"
    )

    rows = []
    for name, budget in summary["budgets"].items():
        if "p95_budget_ms" in budget:
            limit = f"p95 &le; {budget['p95_budget_ms']:,.0f} ms" + (
                "" if budget.get("enforced", True) else " (reported)"
            )
            actual = f"{budget['p95_ms']:,.1f} ms"
        elif "max" in budget:
            limit, actual = f"&le; {budget['max']}", str(budget["actual"])
        else:
            limit, actual = "all hold", "see below"
        rows.append([escape(name), limit, actual, _ok(bool(budget.get("ok")))])
    sections.append("<h2>Budgets</h2>" + _table(["budget", "limit", "measured", ""], rows))

    invariants = summary.get("invariants") or {}
    sections.append(
        "<h2>Invariants (the audit)</h2>"
        + (
            _table(
                ["invariant", "", "detail"],
                [
                    [escape(name), _ok(bool(r["ok"])), escape(str(r.get("detail", "")))]
                    for name, r in invariants.items()
                ],
            )
            if invariants
            else '<p class="fail">No invariant was checked: a run that cannot see the data proves little.</p>'
        )
    )

    if machine:
        total = max(machine.get("wall_s", 0) * (machine.get("cores") or 1), 1.0)
        cpu = machine.get("cpu_seconds", {})
        others = cpu.get("everything else on the machine", 0.0)
        warning = (
            f'<p class="fail">{others / total:.0%} of the machine went to other processes: latency says more about '
            "them than about the shop (correctness checks are unaffected).</p>"
            if others / total > 0.2
            else ""
        )
        sections.append(
            "<h2>Machine accounting</h2>"
            f"<p>{machine.get('machine_busy_pct')} % busy on {machine.get('cores')} cores over "
            f"{machine.get('wall_s')} s, load average {machine.get('load_average_mean')}.</p>"
            + warning
            + _table(
                ["who", "CPU seconds", "share of the machine"],
                [[escape(label), f"{seconds:,.1f}", f"{seconds / total:.0%}"] for label, seconds in cpu.items()],
            )
            + (f"<p>The worker: {escape(worker_line(machine['worker']))}.</p>" if machine.get("worker") else "")
        )

    series = time_series(samples)
    if series:
        budget_reads, budget_writes = P95_BUDGETS_MS["reads"], P95_BUDGETS_MS["writes"]
        sections.append(
            "<h2>Charts</h2>"
            + svg_chart(
                [
                    ("requests/s", "#1f77b4", series["rps"]),
                    ("429/s", "#ff7f0e", series["refused_429_per_s"]),
                    ("5xx/s", "#d62728", series["server_errors_per_s"]),
                ],
                title=f"throughput ({WINDOW_S:.0f} s windows)",
                x_label="seconds since start",
                y_label="per second",
            )
            + svg_chart(
                [("p95, all", "#2ca02c", series["p95_ms"]), ("p95, writes", "#9467bd", series["writes_p95_ms"])],
                title=f"latency p95 ({WINDOW_S:.0f} s windows)",
                x_label="seconds since start",
                y_label="ms",
                guides=[(budget_reads, "reads budget"), (budget_writes, "writes budget")],
            )
        )

    if stress:
        steps = stress.get("steps", [])
        knee = stress.get("knee")
        knee_text = f"{knee['users']} users at {knee['rps']} rps" if knee else "budgets broke at the first step"
        sections.append(
            "<h2>Stress ramp</h2>"
            + f"<p>Knee: {escape(knee_text)}. "
            + f"{escape(stress.get('past_knee', ''))}.</p>"
            + svg_chart(
                [
                    ("reads p95", "#1f77b4", [(r["users"], r["p95_ms"].get("reads", 0.0)) for r in steps]),
                    ("writes p95", "#ff7f0e", [(r["users"], r["p95_ms"].get("writes", 0.0)) for r in steps]),
                ],
                title="p95 per step",
                x_label="users",
                y_label="ms",
                guides=[(P95_BUDGETS_MS["reads"], "reads budget")],
            )
            + _table(
                ["users", "rps", "p95 (ms)", "429", "503 + Retry-After", "500s", "timeouts", ""],
                [
                    [
                        str(r["users"]),
                        str(r["rps"]),
                        escape(", ".join(f"{k} {v:,.0f}" for k, v in r["p95_ms"].items())),
                        str(r["refused_429"]),
                        str(r["shed_503_with_retry_after"]),
                        str(r["server_errors_500"]),
                        str(r["timeouts_or_connection_errors"]),
                        _ok(bool(r["ok"])),
                    ]
                    for r in steps
                ],
            )
        )

    endpoint_rows = [
        [escape(name), f"{e['requests']:,}", f"{e['p95_ms']:,.1f}", str(e["failures"])]
        for name, e in sorted(summary.get("endpoints", {}).items(), key=lambda item: -item[1]["requests"])
    ]
    sections.append(
        "<h2>Endpoints</h2>"
        + _table(["endpoint", "requests", "p95 ms", "unexpected"], endpoint_rows)
        + "<p>Status codes: "
        + escape(", ".join(f"{code} x {count:,}" for code, count in summary.get("status_counts", {}).items()))
        + "</p>"
    )
    links = [*charts, "summary.json", "outcomes.json", "machine.json", "report.html", "ledger/", "stack/"]
    sections.append(
        "<h2>Files</h2><p>"
        + " &middot; ".join(f'<a href="{escape(name)}">{escape(name)}</a>' for name in links)
        + "</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 980px; color: #222; }}
table {{ border-collapse: collapse; margin: .5em 0 1em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: left; vertical-align: top; }}
.verdict {{ font-size: 28px; font-weight: bold; }} .pass, .ok {{ color: #19791f; }} .fail {{ color: #b3141b; }}
.muted {{ color: #777; }} svg {{ display: block; margin: 1em 0; }} .axis {{ stroke: #444; }}
.guide {{ stroke: #444; stroke-dasharray: 3 3; }} .tick, .legend {{ font-size: 11px; }} .title {{ font-weight: bold; }}
</style></head>
<body><h1>{escape(title)}</h1>
{"".join(sections)}
</body></html>
"""


def write_index(out_dir: Path, **kwargs: Any) -> Path:
    path = out_dir / "index.html"
    path.write_text(render_index(**kwargs))
    return path
