"""The authorization matrix: every route x every method x every actor, checked against policy.py.

The scene (tests/authorization/scene.py) is built once for this module and committed; every cell runs in its
own transaction that is rolled back, so each cell starts from the same untouched scene. Each cell sends one
request as its actor and asserts:
  1. the status is exactly the one the policy declares;
  2. actors who are never entitled to alice's data (anonymous, bob, staff without the grant) find none of her
     secrets (order numbers, name, address, e-mail) in the body or headers, whatever the status;
  3. those actors changed nothing of alice's (orders, lines, cart, account), even when their request succeeded
     (bob updating *his* cart must not touch hers);
  4. a denied cell (4xx, or a redirect to a login page) and every GET changed nothing in the database.
The number of cells checked is printed at the end of the run (see conftest.py in this folder).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from rest_framework_simplejwt.tokens import RefreshToken
from zeal import zeal_ignore

from tests.authorization.policy import (
    ACTORS,
    ANONYMOUS,
    OTHER_CUSTOMER,
    STAFF_WITHOUT_GRANT,
    Route,
    policy_for,
)
from tests.authorization.routes import RouteInfo, project_routes
from tests.authorization.scene import Scene, build_scene, delete_scene
from tests.authorization.snapshot import changed_tables, database_snapshot, owner_rows

pytestmark = pytest.mark.django_db

NEVER_ENTITLED_TO_OWNER_DATA = {ANONYMOUS, OTHER_CUSTOMER, STAFF_WITHOUT_GRANT}


@dataclass(frozen=True)
class Cell:
    route: RouteInfo
    row: Route
    method: str
    actor: str

    @property
    def expected(self) -> int:
        return self.row.access[self.method][self.actor]

    @property
    def id(self) -> str:
        return f"{self.route.key} {self.method} {self.actor}"


def matrix_cells() -> list[Cell]:
    found: list[Cell] = []
    for route in project_routes():
        row = policy_for(route.key)
        if row is None:
            continue  # test_route_coverage.py names it
        if row.sample is not None and row.sample != route.key:
            continue  # a glob family (admin) is exercised through its sample route
        for method in row.access:
            for actor in ACTORS:
                found.append(Cell(route=route, row=row, method=method, actor=actor))
    return found


CELLS = matrix_cells()


def _url(cell: Cell, scene: Scene) -> str:
    kwargs: dict[str, Any] = {}
    if cell.route.kwargs:
        assert cell.row.obj, f"{cell.route.key} has URL kwargs {cell.route.kwargs}: give its row an `obj`"
        target = scene.obj(cell.row.obj)
        for name in cell.route.kwargs:
            # `pk`, `id`, `slug` or an attribute of that name; else an `*_id` kwarg means the object's own pk.
            kwargs[name] = getattr(target, name) if hasattr(target, name) else target.pk
    if ":" in cell.route.key or "/" not in cell.route.key:
        return reverse(cell.route.key, kwargs=kwargs)
    path = cell.route.route
    for name, value in kwargs.items():
        path = re.sub(rf"<(?:\w+:)?{name}>", str(value), path)
    return "/" + path


def _send(cell: Cell, scene: Scene) -> Any:
    user = scene.actor(cell.actor)
    scene.me = user
    client = Client()
    headers: dict[str, str] = {}
    is_api = cell.route.route.startswith("api/")
    if user is not None and is_api:
        headers["Authorization"] = f"Bearer {RefreshToken.for_user(user).access_token}"  # API: a JWT
    elif user is not None:
        with zeal_ignore():  # set-up, not the code under test (each request gets its own zeal context)
            client.force_login(user)  # web pages: a session
    if cell.method in cell.row.headers:
        headers.update(cell.row.headers[cell.method](scene))
    url = _url(cell, scene)
    body = cell.row.body[cell.method](scene) if cell.method in cell.row.body else None
    if cell.method == "GET":
        return client.get(url, headers=headers)
    if is_api:
        return client.generic(
            cell.method, url, json.dumps(body or {}), content_type="application/json", headers=headers
        )
    return client.generic(
        cell.method,
        url,
        urlencode(body or {}, doseq=True),
        content_type="application/x-www-form-urlencoded",
        headers=headers,
    )


def _is_login_redirect(response: Any) -> bool:
    return response.status_code == 302 and "login" in response.get("Location", "")


@pytest.fixture(scope="module")
def scene(django_db_setup: None, django_db_blocker: Any) -> Iterator[Scene]:
    with django_db_blocker.unblock():
        built = build_scene()
    yield built
    with django_db_blocker.unblock():
        delete_scene(built)


# N+1 has its own suite; here a library's harmless double get() (simplejwt's refresh rotation, Django's
# logout) must not hide an authorization result, so zeal reports instead of raising.
@override_settings(ZEAL_RAISE=False)
@pytest.mark.parametrize("cell", CELLS, ids=[cell.id for cell in CELLS])
def test_cell(cell: Cell, scene: Scene) -> None:
    check_cell(cell, scene)


def check_cell(cell: Cell, scene: Scene) -> None:
    with zeal_ignore():
        before = database_snapshot()
        owner_before = owner_rows(scene.owner)

    response = _send(cell, scene)

    content = b"" if getattr(response, "streaming", False) else response.content
    text = content.decode(errors="replace")
    assert response.status_code == cell.expected, (
        f"{cell.id}: expected {cell.expected}, got {response.status_code}: {text[:300]}"
    )
    public_for_anonymous = any(200 <= cells[ANONYMOUS] < 300 for cells in cell.row.access.values())
    if cell.expected == 302 and cell.actor == ANONYMOUS and not public_for_anonymous:
        assert _is_login_redirect(response), f"{cell.id}: anonymous should be sent to log in, not to {response}"
    if cell.actor in NEVER_ENTITLED_TO_OWNER_DATA:
        exposed = f"{text}\n{response.headers}"
        leaked = [secret for secret in scene.owner_secrets() if secret in exposed]
        assert not leaked, f"{cell.id}: alice's data reached {cell.actor}: {leaked}"
    denied = response.status_code >= 400 or _is_login_redirect(response)
    if denied or cell.method == "GET":
        changed = changed_tables(before, database_snapshot())
        assert not changed, f"{cell.id}: a {'denied' if denied else 'read-only'} request changed {changed}"
    if cell.actor in NEVER_ENTITLED_TO_OWNER_DATA:
        owner_changed = changed_tables(owner_before, owner_rows(scene.owner))
        assert not owner_changed, f"{cell.id}: {cell.actor} changed alice's {owner_changed}"
