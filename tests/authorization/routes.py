"""Every URL pattern of the project, read from the URL resolver (never from a hand-kept list)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class RouteInfo:
    key: str  # "namespace:name", or the route string when the pattern has no name
    route: str  # the full route, e.g. "api/v1/orders/<int:order_id>/"
    callback: Callable[..., Any]

    @property
    def kwargs(self) -> list[str]:
        return re.findall(r"<(?:\w+:)?(\w+)>", self.route) + re.findall(r"\(\?P<(\w+)>", self.route)

    def implemented_methods(self) -> set[str] | None:
        """The methods a class-based view answers (DRF or Django), or None for a plain function view."""
        view_class = getattr(self.callback, "cls", None) or getattr(self.callback, "view_class", None)
        if view_class is None:
            return None
        allowed = {name.upper() for name in getattr(view_class, "http_method_names", [])}
        return {method for method in HTTP_METHODS if method in allowed and hasattr(view_class, method.lower())}


def iter_routes(
    patterns: list[Any] | None = None, prefix: str = "", namespace: str | None = None
) -> Iterator[RouteInfo]:
    if patterns is None:
        patterns = get_resolver().url_patterns
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = pattern.namespace
            joined = f"{namespace}:{inner}" if namespace and inner else (inner or namespace)
            yield from iter_routes(pattern.url_patterns, route, joined)
        elif isinstance(pattern, URLPattern):
            named = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
            key = named or route
            yield RouteInfo(key=key, route=route, callback=pattern.callback)


def project_routes() -> list[RouteInfo]:
    return list(iter_routes())
