"""schemathesis over every operation of /api/v1/schema/, as a stranger, a customer and a staff member.

Every check schemathesis has runs on every response (server errors, response schema, status codes, content
type, headers, negative data rejection, positive data acceptance, missing required headers, unsupported
methods, ignored auth); tuned ones are in schemathesis.toml with the reason beside each. Phases: the
examples, the coverage phase (boundary values, missing parameters, wrong methods) and the fuzzing phase,
with a fixed seed and LEVEL.api_examples fuzzed examples per operation and actor (levels.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests.authorization.scene import Scene
from tests.fuzz import checks  # noqa: F401  (registers the custom checks)
from tests.fuzz.api import ANONYMOUS, CUSTOMER, STAFF, schema, world_enter, world_leave

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("requests_keep_the_test_transaction")]

# The world is fresh per test, and one test runs many examples: hypothesis' warning about function-scoped
# fixtures is exactly the point here. `too_slow`/`data_too_large`: real requests through the whole stack.
FUZZ_SETTINGS = settings(suppress_health_check=list(HealthCheck), deadline=None, print_blob=True)


@pytest.fixture
def as_anonymous(scene: Scene) -> Iterator[None]:
    world_enter(scene, ANONYMOUS)
    yield
    world_leave()


@pytest.fixture
def as_customer(scene: Scene) -> Iterator[None]:
    world_enter(scene, CUSTOMER)
    yield
    world_leave()


@pytest.fixture
def as_staff(scene: Scene) -> Iterator[None]:
    world_enter(scene, STAFF)
    yield
    world_leave()


def _call_and_validate(case: Any) -> None:
    case.call_and_validate()


@schema.parametrize()
@FUZZ_SETTINGS
def test_anonymous(case: Any, as_anonymous: None) -> None:
    _call_and_validate(case)


@schema.parametrize()
@FUZZ_SETTINGS
def test_customer(case: Any, as_customer: None) -> None:
    _call_and_validate(case)


@schema.parametrize()
@FUZZ_SETTINGS
def test_staff(case: Any, as_staff: None) -> None:
    _call_and_validate(case)
