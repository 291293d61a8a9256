"""No route without a policy: every URL pattern of the project has a row in tests/authorization/policy.py.

Add a route, and this test fails until you declare who may call it. The matrix (test_matrix.py) then proves
the declaration against the running code.
"""

from __future__ import annotations

from tests.authorization.policy import POLICY, policy_for
from tests.authorization.routes import RouteInfo, project_routes


def uncovered(routes: list[RouteInfo]) -> list[str]:
    return [f"  {route.key!r:45} /{route.route}" for route in routes if policy_for(route.key) is None]


def test_every_route_has_a_policy_row() -> None:
    missing = uncovered(project_routes())
    assert not missing, (
        "These routes have no row in tests/authorization/policy.py; declare who may call them:\n" + "\n".join(missing)
    )


def test_every_implemented_method_has_a_policy_cell() -> None:
    undeclared = []
    for route in project_routes():
        row = policy_for(route.key)
        methods = route.implemented_methods()
        if row is None or methods is None or row.sample is not None:
            continue
        for method in sorted(methods - set(row.access)):
            undeclared.append(f"  {route.key!r:45} {method}")
    assert not undeclared, (
        "These views answer a method the policy table does not mention; add the method to the row:\n"
        + "\n".join(undeclared)
    )


def test_every_policy_row_names_an_existing_route() -> None:
    keys = {route.key for route in project_routes()}
    stale = [key for key in POLICY if "*" not in key and key not in keys]
    stale += [key for key, row in POLICY.items() if row.sample is not None and row.sample not in keys]
    assert not stale, f"Policy rows for routes that do not exist (renamed or removed?): {stale}"


def test_every_cell_names_every_actor() -> None:
    from tests.authorization.policy import ACTORS

    incomplete = [
        f"{key} {method}"
        for key, row in POLICY.items()
        for method, cells in row.access.items()
        if set(cells) != set(ACTORS)
    ]
    assert not incomplete, f"Rows that do not give a status for every actor: {incomplete}"


def test_twin_a_route_added_without_a_row_is_reported() -> None:
    """The check can fail: a new page that nobody declared is named, with its path."""
    sneaky = RouteInfo(key="orders:export-all", route="orders/export/", callback=lambda request: None)
    assert uncovered([*project_routes(), sneaky]) == ["  'orders:export-all'                           /orders/export/"]
