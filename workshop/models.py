"""What the workshop keeps: its runs (with the audit samples the live chart draws) and the exam.

Nothing here points at the real shop's rows: a twin's writes are told apart by their tags (workshop/tags.py), so
the shop's tables need no workshop column.
"""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q

from workshop.modes import MODES


class RunKind(models.TextChoices):
    RUN = "run", "Run"  # twin and fixed side by side, at the same offered load
    EXAM = "exam", "Exam"  # one unnamed twin alone, until the teacher reveals it


class RunStatus(models.TextChoices):
    STARTING = "starting", "Starting"
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"
    FAILED = "failed", "Failed"


class Run(models.Model):
    mode = models.CharField(max_length=20, choices=[(slug, mode.title) for slug, mode in MODES.items()])
    kind = models.CharField(max_length=10, choices=RunKind.choices, default=RunKind.RUN)
    # Whose data: every account and product the run uses carries the seat in its tag (workshop/tags.py).
    seat = models.CharField(max_length=8)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.STARTING)
    params = models.JSONField(default=dict)
    # The live chart: [{"t": seconds since start, "twin": {counter: n}, "fixed": {counter: n}}, ...]
    samples = models.JSONField(default=list)
    scorecard = models.JSONField(null=True, blank=True)
    verdict = models.CharField(max_length=200, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    log_path = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    revealed_at = models.DateTimeField(null=True, blank=True)

    # Declared, so type checking knows it even when the app is not installed (WORKSHOP_ENABLED unset).
    objects: ClassVar[models.Manager[Run]] = models.Manager()

    class Meta:
        ordering = ["-id"]
        constraints = [
            # Two runs of one mode for one seat would audit each other's rows: one at a time.
            models.UniqueConstraint(
                fields=["seat", "mode"],
                condition=Q(status__in=["starting", "running"]),
                name="workshop_one_active_run_per_seat_and_mode",
            ),
            # One exam at a time for the whole room.
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(kind="exam", status__in=["starting", "running"]),
                name="workshop_one_active_exam",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.mode} ({self.seat}) #{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in {RunStatus.STARTING, RunStatus.RUNNING}
