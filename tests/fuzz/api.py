"""The API under schemathesis: the document the shop serves, loaded from the app itself, with its checks.

One loader for the fuzzing tests (test_api_schemathesis.py) and the stateful ones (test_api_stateful.py):
  - the schema comes from GET /api/v1/schema/ through the real WSGI stack (every middleware included);
  - the configuration is tests/fuzz/schemathesis.toml (which checks, and why each tuned one is tuned);
  - the seed and the numbers come from levels.py (`make test` vs `make fuzz`);
  - hooks let some drawn ids name objects that exist (the world of tests/authorization/scene.py), so the
    fuzzer reaches the code behind the 404, and count what ran for the closing summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import strategies as st
from rest_framework_simplejwt.tokens import RefreshToken

from config.wsgi import application
from orders.serializers import MAX_ID
from tests.authorization.scene import Scene
from tests.fuzz import stats
from tests.fuzz.levels import SEED, fuzz_level

CONFIG = Path(__file__).with_name("schemathesis.toml")
LEVEL = fuzz_level()

ANONYMOUS, CUSTOMER, STAFF = "anonymous", "customer", "staff"
ACTORS = (ANONYMOUS, CUSTOMER, STAFF)


def load_schema() -> Any:
    loaded = schemathesis.openapi.from_wsgi(
        "/api/v1/schema/", application, config=schemathesis.Config.from_path(str(CONFIG))
    )
    loaded.config.seed = SEED
    # deterministic: the same cases every run, so a CI failure reproduces on a laptop.
    loaded.config.generation.update(max_examples=LEVEL.api_examples, deterministic=True)
    return loaded


schema = load_schema()


@dataclass
class World:
    """The objects of the current test (a fresh scene per test) and the actor the requests run as."""

    scene: Scene | None = None
    actor: str = ANONYMOUS
    tokens: dict[str, str] = field(default_factory=dict)
    stateful: bool = False  # the state machine's calls are counted as its steps

    def ids(self, parameter: str) -> list[int]:
        scene = self.scene
        if scene is None:
            return []
        if parameter == "order_id":
            return [scene.order.pk, scene.paid_order.pk, scene.bob_order.pk]
        if parameter == "product_id":
            return [scene.product.pk, scene.coffee_product.pk]
        return []


world = World()


# refresh_interval=None: the token depends on the actor of the current test, never cached across tests.
# retry_on=[]: a 401 is an answer to check, not a reason to fetch a token and try again.
@schema.auth(refresh_interval=None, retry_on=[])
class ActorAuth:
    """The current actor's bearer token (none for the anonymous actor). schemathesis leaves it off the cases
    that test a missing or invalid Authorization header, so those still reach the server without one."""

    def get(self, case: Any, context: Any) -> str | None:
        return world.tokens.get(world.actor)

    def set(self, case: Any, data: str | None, context: Any) -> None:
        if data:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def world_enter(scene: Scene, actor: str, *, stateful: bool = False) -> None:
    world.scene = scene
    world.actor = actor
    world.stateful = stateful
    world.tokens = {
        CUSTOMER: str(RefreshToken.for_user(scene.owner).access_token),
        STAFF: str(RefreshToken.for_user(scene.staff_with_grant).access_token),
    }


def world_leave() -> None:
    world.scene = None
    world.tokens = {}


def _valid_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


@schema.hooks.hook("flatmap_path_parameters")
def real_objects_in_paths(ctx: schemathesis.HookContext, path_parameters: dict[str, Any]) -> Any:
    """Half the valid ids drawn for a path name an existing object (alice's orders, bob's, a product)."""
    if not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    options = [path_parameters]
    for name, value in path_parameters.items():
        known = world.ids(name)
        if known and _valid_id(value):  # an invalid id stays invalid: negative cases must stay negative
            options += [{**path_parameters, name: known_id} for known_id in known]
    return st.sampled_from(options) if len(options) > 1 else st.just(path_parameters)


@schema.hooks.hook("flatmap_body")
def real_products_in_orders(ctx: schemathesis.HookContext, body: Any) -> Any:
    """Order lines drawn with a valid product id sometimes name a product that exists and is sold."""
    lines = body.get("lines") if isinstance(body, dict) else None
    if not isinstance(lines, list) or not world.ids("product_id"):
        return st.just(body)
    swappable = [
        index for index, line in enumerate(lines) if isinstance(line, dict) and _valid_id(line.get("product_id"))
    ]
    if not swappable:
        return st.just(body)

    def with_known(product_id: int) -> dict[str, Any]:
        replaced = [dict(line) for line in lines]
        for index in swappable:
            replaced[index]["product_id"] = product_id
        return {**body, "lines": replaced}

    return st.one_of(st.just(body), st.sampled_from(world.ids("product_id")).map(with_known))


@schema.hooks.hook("after_validate")
def count_checks(ctx: schemathesis.HookContext, case: Any, response: Any, results: list[Any]) -> None:
    names = [result.name for result in results]
    stats.record_api(operation=case.operation.label, actor=world.actor, checks=names, stateful=world.stateful)
