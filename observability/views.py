"""GET /metrics: Prometheus text format, summed over every worker process, plus scrape-time gauges.

Access (observability/access.py, shared with the Celery worker's metrics port): open in development and tests.
When METRICS_TOKEN is set, a scraper must send `Authorization: Bearer <token>`; when METRICS_ALLOWED_IPS is set,
requests from those addresses pass too. In production with neither set, /metrics answers 404: internal numbers
are never public by accident.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import Metric

from core.metrics import multiprocess_dir
from core.problems import problem_response
from observability.access import metrics_access_for
from observability.collectors import ShopStateCollector


class _ThisProcess:
    """Single-process mode (runserver, tests): the default registry, behind the per-scrape registry."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def scrape_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    if path:
        # Several workers: add up the values every process wrote to PROMETHEUS_MULTIPROC_DIR.
        multiprocess.MultiProcessCollector(registry, path=path)
    else:
        registry.register(_ThisProcess())  # type: ignore[arg-type]
    registry.register(ShopStateCollector())
    return registry


def metrics_access(request: HttpRequest) -> str:
    """ "allowed", "unauthorized" (a token is required) or "hidden" (production without protection)."""
    return metrics_access_for(
        authorization=request.headers.get("Authorization", ""), remote_addr=str(request.META.get("REMOTE_ADDR", ""))
    )


@login_not_required  # machine endpoint: its own bearer token, never the login page
@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    access = metrics_access(request)
    if access == "hidden":
        raise Http404
    if access == "unauthorized":
        response = problem_response(
            status=401,
            code="not_authenticated",
            title="Authentication credentials were not provided.",
            detail="Send Authorization: Bearer <METRICS_TOKEN>.",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
