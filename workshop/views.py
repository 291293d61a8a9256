"""The teacher page and its actions. Staff only; each person's runs and scorecards are their own (their seat)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import Resolver404, resolve
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from core.auth import request_user
from core.errors import ApplicationError
from workshop import services, tags
from workshop.models import Run, RunKind
from workshop.modes import MODES
from workshop.selectors import exam_active_mode, exam_current, run_report, teacher_cards

View = Callable[..., HttpResponse]


def staff_only(view: View) -> View:
    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request_user(request).is_staff:
            raise PermissionDenied("The workshop's teacher page is for staff accounts.")
        return view(request, *args, **kwargs)

    return guarded


def _seat(request: HttpRequest) -> str:
    return tags.seat_for_user(request_user(request).pk)


def _mode_or_404(mode: str) -> str:
    if mode not in MODES:
        raise Http404("No such workshop mode.")
    return mode


@staff_only
@require_GET
def teacher_page(request: HttpRequest) -> HttpResponse:
    services.runs_expire()
    context = {"cards": teacher_cards(seat=_seat(request)), "exam": exam_current(), "seat": _seat(request)}
    return render(request, "workshop/teacher.html", context)


@never_cache
@staff_only
@require_GET
def run_samples(request: HttpRequest, run_id: int) -> JsonResponse:
    run = get_object_or_404(Run, pk=run_id)
    if run.kind == RunKind.RUN and run.seat != _seat(request) and not request_user(request).is_superuser:
        raise Http404("No such run.")  # a student's chart is theirs; the teacher (superuser) sees every seat
    return JsonResponse(run_report(run=run))


@staff_only
@require_POST
def run_start_view(request: HttpRequest, mode: str) -> HttpResponse:
    try:
        run = services.run_start(mode=_mode_or_404(mode), seat=_seat(request), started_by=request_user(request))
    except ApplicationError as refusal:
        messages.error(request, refusal.detail)
    else:
        messages.success(request, f"{MODES[mode].title}: run {run.pk} started; the chart follows it live.")
    return redirect(f"/workshop/#mode-{mode}")


@staff_only
@require_POST
def reset_view(request: HttpRequest, mode: str) -> HttpResponse:
    report = services.workshop_reset(seat=_seat(request), mode=_mode_or_404(mode))
    messages.success(
        request,
        f"{MODES[mode].title} reset: {report.orders_removed} twin orders removed, "
        f"{report.products_restored} products back to their stock; the real shop was not touched.",
    )
    return redirect(f"/workshop/#mode-{mode}")


@staff_only
@require_POST
def try_view(request: HttpRequest, mode: str, side: str) -> HttpResponse:
    if side not in tags.SIDES:
        raise Http404("No such side.")
    user, url = services.workshop_try(seat=_seat(request), mode=_mode_or_404(mode), side=side)  # type: ignore[arg-type]
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    messages.info(
        request,
        f"You are now {user.username} (password {services.WORKSHOP_PASSWORD}), on the {side} side. "
        "Log in as yourself again to come back to /workshop/.",
    )
    return redirect(url)


@staff_only
@require_POST
def exam_start_view(request: HttpRequest) -> HttpResponse:
    try:
        services.exam_begin(started_by=request_user(request))
    except ApplicationError as refusal:
        messages.error(request, refusal.detail)
    else:
        messages.success(request, "Exam started: one twin is on, unnamed. Ask the room what is wrong.")
    return redirect("/workshop/#exam")


@staff_only
@require_POST
def exam_reveal_view(request: HttpRequest, run_id: int) -> HttpResponse:
    run = services.exam_reveal(run_id=run_id)
    messages.info(request, f"The exam's twin was {MODES[run.mode].title}.")
    return redirect("/workshop/#exam")


@csrf_exempt
@login_not_required
def exam_twin(request: HttpRequest, rest: str) -> HttpResponse:
    """The running exam's twin, behind a neutral prefix: the mode is in no URL, route label or log line."""
    mode = exam_active_mode()
    if mode is None:
        raise Http404("No exam is running.")
    try:
        match = resolve(f"/{mode}/{rest}", urlconf="workshop.twins.urls")
    except Resolver404:
        raise Http404("No such page.") from None
    inner: View = match.func
    if getattr(inner, "login_required", True) and not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not getattr(inner, "csrf_exempt", False):
        inner = csrf_protect(inner)
    return inner(request, *match.args, **match.kwargs)
