"""Workshop reads: the teacher page's cards (code rendered from the source files), runs, the exam."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workshop.models import Run, RunKind
from workshop.modes import MODES, Mode
from workshop.source import Excerpt, excerpt_or_missing, file_excerpt


@dataclass(frozen=True)
class Card:
    mode: Mode
    twin: list[Excerpt]
    fix: list[Excerpt]
    run: Run | None


def teacher_cards(*, seat: str) -> list[Card]:
    latest: dict[str, Run] = {}
    for run in Run.objects.filter(seat=seat, kind=RunKind.RUN).order_by("-id")[:50]:
        latest.setdefault(run.mode, run)
    return [
        Card(
            mode=mode,
            twin=[file_excerpt(path) for path in mode.twin_files],
            fix=[excerpt_or_missing(reference) for reference in mode.fix],
            run=latest.get(slug),
        )
        for slug, mode in MODES.items()
    ]


def exam_current() -> Run | None:
    """The exam that is running, or the last one (until a new one starts), for the exam panel."""
    return Run.objects.filter(kind=RunKind.EXAM).order_by("-id").first()


def exam_active_mode() -> str | None:
    run = Run.objects.filter(kind=RunKind.EXAM, status__in=["starting", "running"]).only("mode").first()
    return run.mode if run is not None else None


def run_report(*, run: Run) -> dict[str, Any]:
    """What the live chart polls. An exam's mode and counter names stay hidden until it is revealed."""
    hidden = run.kind == RunKind.EXAM and run.revealed_at is None
    mode = MODES[run.mode]
    return {
        "id": run.pk,
        "kind": run.kind,
        "status": run.status,
        "mode": None if hidden else run.mode,
        "title": "an unnamed twin" if hidden else mode.title,
        "counters": [] if hidden else [{"name": c.name, "label": c.label} for c in mode.counters],
        "samples": [] if hidden else run.samples,
        "scorecard": None if hidden else run.scorecard,
        "verdict": "" if hidden else run.verdict,
        "exit_code": run.exit_code,
        "duration_s": run.params.get("duration_s"),
    }
