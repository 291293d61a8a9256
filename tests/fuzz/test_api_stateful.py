"""schemathesis' stateful phase: sequences of calls that follow the OpenAPI links of the document.

core/openapi.py writes the links (create -> read -> edit/cancel, list -> item, ETag -> If-Match), so a
scenario places an order, reads it back, edits it with the ETag it was given, cancels it, ... as a customer,
and reads and ships orders and edits products as staff. Every response of every step goes through all the
checks of the fuzzing pass, plus the stateful ones (a resource just created must be readable; one deleted
must be gone). LEVEL.stateful_scenarios scenarios of up to LEVEL.stateful_steps calls per actor.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests.authorization.scene import Scene
from tests.fuzz import (
    checks,  # noqa: F401  (registers the custom checks)
    stats,
)
from tests.fuzz.api import ACTORS, LEVEL, schema, world, world_enter, world_leave

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("requests_keep_the_test_transaction")]


class ShopWorkflow(schema.as_state_machine()):  # type: ignore[misc]
    def setup(self) -> None:
        stats.stateful_scenarios[world.actor] += 1

    def after_call(self, response: Any, case: Any) -> None:
        super().after_call(response, case)
        stats.stateful_steps[world.actor] += 1


def test_the_document_links_its_operations() -> None:
    """Without links there is no stateful phase: the create -> read -> edit chain must be in the document."""
    links = schema.raw_schema["paths"]["/api/v1/orders/"]["post"]["responses"]["201"]["links"]
    assert links["orders_partial_update"]["parameters"] == {
        "order_id": "$response.body#/id",
        "header.If-Match": "$response.header.ETag",
    }


@pytest.mark.parametrize("actor", ACTORS)
def test_stateful(actor: str, scene: Scene) -> None:
    world_enter(scene, actor, stateful=True)
    try:
        ShopWorkflow.run(
            settings=settings(
                max_examples=LEVEL.stateful_scenarios,
                stateful_step_count=LEVEL.stateful_steps,
                derandomize=True,  # the same scenarios every run
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
        )
    finally:
        world_leave()
