"""A hostile crawl of every HTML route: junk in the query string, the path and every form field.

Routes come from the URL resolver (tests/authorization/routes.py), like the authorization matrix, so a new
page is crawled the day it is added. The API has its own fuzzer (schemathesis); everything else is here,
the Django admin included. For each route and actor (anonymous, alice the customer, greta from the staff,
and a superuser on the admin) the crawl sends:
  - GETs whose query parameters (the names the shop and the admin read, plus invented ones) carry junk from
    every class the issue names: NUL, huge and negative numbers, 10,000 characters, bad percent-encoding,
    plus unicode tricks, markup, SQL-ish text and wrong types;
  - junk in the path (huge ids, long slugs, NUL, dot-dot);
  - POSTs of junk into every field of the forms the page renders, with a valid CSRF token, and PUT/DELETE.
Every answer must be below 500, and an error must be the shop's own page (or problem+json for JSON).
How many values per route: LEVEL.crawl_values (levels.py); the run prints what it crawled at the end.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.test import Client, override_settings
from zeal import zeal_ignore

from accounts.models import User
from tests.authorization.policy import policy_for
from tests.authorization.routes import RouteInfo, project_routes
from tests.authorization.scene import Scene, build_scene, delete_scene
from tests.factories import TEST_PASSWORD, UserFactory
from tests.fuzz import stats
from tests.fuzz.junk import JUNK
from tests.fuzz.levels import SEED, fuzz_level

pytestmark = pytest.mark.django_db

LEVEL = fuzz_level()
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"

# What the shop's pages and the admin read from the query string, and a few nobody reads.
QUERY_NAMES = [
    "q", "page", "next", "status", "placed", "category", "centre", "cursor", "page_size", "o", "p", "e", "all",
    "_changelist_filters", "_popup", "_to_field", "is_staff__exact", "id__exact", "status__exact", "script",
    "lang", "format", "csrfmiddlewaretoken", "x",
]  # fmt: skip
PATH_JUNK = {"int": ["0", "9" * 30, "9223372036854775808"], "slug": ["a" * 3000, "--", "%00", "..%2F..", "%C3%BC"]}
ERROR_PAGE_MARK = 'class="brand"'  # the shop's header, on its error pages (bare) and its form pages (base)


def junk_values(route_key: str) -> list[str]:
    """One value of every class, then more, drawn the same way every run (the seed and the route name)."""
    draw = random.Random(f"{SEED}:{route_key}")
    values = [draw.choice(options) for options in JUNK.values()]
    rest = [value for options in JUNK.values() for value in options if value not in values]
    draw.shuffle(rest)
    return (values + rest)[: max(LEVEL.crawl_values, len(JUNK))]


@dataclass
class World:
    scene: Scene
    superuser: User

    def object_for(self, route: RouteInfo) -> Any:
        row = policy_for(route.key)
        if row is not None and row.obj and not route.key.startswith("admin"):
            return self.scene.obj(row.obj)
        match = re.match(r"admin/(\w+)/(\w+)/", route.route)
        if match:
            try:
                model = apps.get_model(match[1], match[2])
            except LookupError:
                return None
            return model._default_manager.order_by("pk").first()
        return None


def _html_routes() -> list[RouteInfo]:
    routes = []
    for route in project_routes():
        if route.route.startswith("api/"):
            continue  # the API is schemathesis' (test_api_schemathesis.py)
        if route.key.startswith("admin/") and route.route.endswith("<path:object_id>/"):
            continue  # Django's redirect to the same route's change page, crawled there
        routes.append(route)
    return routes


ROUTES = _html_routes()


def _path_for(route: RouteInfo, world: World, junk: str | None = None) -> str:
    path = "/" + route.route
    target = world.object_for(route)
    path = re.sub(r"\^\(\?P<app_label>[^)]*\)/\$", "shop/", path)  # the admin's app index
    path = path.replace("(?P<url>.*)$", "no-such-admin-page/")
    for name in route.kwargs:
        if junk is not None:
            value = junk
        elif name == "content_type_id" and target is not None:
            value = str(ContentType.objects.get_for_model(type(target)).pk)
        elif name in {"user_id"}:
            value = str(world.scene.owner.pk)
        elif name in {"group_id"}:
            value = str(world.scene.berlin_group.pk)
        elif target is None:
            value = "1"
        elif name == "slug" or (hasattr(target, name) and name not in {"id"}):
            value = str(getattr(target, name, target.pk))
        else:
            value = str(target.pk)
        path = re.sub(rf"<(?:\w+:)?{name}>", value, path)
    return path


def _actors(route: RouteInfo, world: World) -> list[tuple[str, User | None]]:
    if route.key.startswith("admin"):
        return [("anonymous", None), ("staff", world.scene.staff_with_grant), ("superuser", world.superuser)]
    return [("anonymous", None), ("customer", world.scene.owner), ("staff", world.scene.staff_with_grant)]


# A CSRF secret of the right shape, set as the cookie and sent back in every form: a valid token, so the
# junk reaches the view instead of stopping at the CSRF check.
CSRF_SECRET = "Fuzz" * 8


def _client(user: User | None) -> Client:
    client = Client(enforce_csrf_checks=True, raise_request_exception=False, HTTP_ACCEPT="text/html")
    if user is not None:
        with zeal_ignore():
            client.force_login(user, backend=MODEL_BACKEND)
    client.cookies[settings.CSRF_COOKIE_NAME] = CSRF_SECRET
    return client


_FIELD = re.compile(r'<(?:input|select|textarea)[^>]*\bname="([^"]+)"')


def _form_fields(html: str) -> list[str]:
    return sorted({name for name in _FIELD.findall(html) if name != "csrfmiddlewaretoken"})


def check_answer(response: Any, what: str, route: RouteInfo) -> None:
    status = response.status_code
    stats.record_crawl(route=route.key, status=status)
    body = b"" if getattr(response, "streaming", False) else response.content
    assert status < 500, f"{what} -> {status}: {body[:400]!r}"
    if status >= 400:
        content_type = response.get("Content-Type", "")
        if "json" in content_type:
            assert content_type.startswith("application/problem+json"), f"{what} -> {status} {content_type}"
        else:
            assert ERROR_PAGE_MARK in body.decode(errors="replace"), f"{what} -> {status}, not the shop's page"


@pytest.fixture(autouse=True)
def _quiet_expected_refusals() -> Iterator[None]:
    """Thousands of 404s and 400s are the point here; Django logs each with its traceback, which the console
    renderer draws with every local (10,000-character strings included): minutes of CPU for nothing.
    Server errors are still logged (django.request ERROR); the refused SuspiciousOperations (django.security,
    logged as errors although they are 400s) are not."""
    quieter = {"django.request": logging.ERROR, "django.security": logging.CRITICAL}
    loggers = [logging.getLogger(name) for name in quieter]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(quieter[logger.name])
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    with django_db_blocker.unblock():
        scene = build_scene()
        superuser = UserFactory.create(username="root", is_staff=True, is_superuser=True)
        superuser.set_password(TEST_PASSWORD)
        superuser.save()
    yield World(scene=scene, superuser=superuser)
    with django_db_blocker.unblock():
        superuser.delete()
        delete_scene(scene)


# N+1 has its own suite; a library's repeated get() on an admin page must not hide a crawl result.
@override_settings(ZEAL_RAISE=False)
@pytest.mark.parametrize("route", ROUTES, ids=[route.key for route in ROUTES])
def test_junk_never_gets_a_server_error(route: RouteInfo, world: World) -> None:
    values = junk_values(route.key)
    draw = random.Random(f"{SEED}:{route.key}:names")
    for actor, user in _actors(route, world):
        client = _client(user)
        path = _path_for(route, world)
        page = client.get(path)
        check_answer(page, f"GET {path} as {actor}", route)
        fields = _form_fields(page.content.decode(errors="replace")) if page.status_code == 200 else []
        token = CSRF_SECRET
        for value in values:
            names = draw.sample(QUERY_NAMES, k=6)
            query = "&".join(f"{name}={value}" for name in names) + f"&{value}={value}"
            check_answer(client.get(path, QUERY_STRING=query), f"GET {path}?{query[:80]} as {actor}", route)
            form = "&".join(f"{name}={value}" for name in [*fields, draw.choice(QUERY_NAMES)])
            body = f"csrfmiddlewaretoken={token}&{form}"
            posted = client.post(path, body, content_type="application/x-www-form-urlencoded")
            check_answer(posted, f"POST {path} [{form[:80]}] as {actor}", route)
        if route.kwargs:
            kind = "int" if "<int:" in route.route else "slug"
            for junk in PATH_JUNK[kind][: max(1, LEVEL.crawl_values // 2)]:
                junk_path = _path_for(route, world, junk=junk)
                check_answer(client.get(junk_path), f"GET {junk_path[:120]} as {actor}", route)
        for method in ("PUT", "DELETE"):
            answer = client.generic(method, path, f"csrfmiddlewaretoken={token}&x={values[0]}")
            check_answer(answer, f"{method} {path} as {actor}", route)
