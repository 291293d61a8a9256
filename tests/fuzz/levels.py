"""How hard the outside checks push: `make test` runs the bounded CI level, `make fuzz` (SHOP_FUZZ_LEVEL=fuzz) more.

Every number is a floor per operation (or per route); the closing summary line prints what actually ran.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# Fixed: the CI pass draws the same cases every run, so a failure reproduces. SHOP_FUZZ_SEED explores others.
SEED = int(os.environ.get("SHOP_FUZZ_SEED", "20261201"))


@dataclass(frozen=True)
class FuzzLevel:
    name: str
    api_examples: int  # schemathesis fuzzing examples per operation and actor (coverage cases come on top)
    stateful_scenarios: int  # state machine runs per actor
    stateful_steps: int  # calls per scenario at most
    crawl_values: int  # junk values per HTML route, parameter position and actor


LEVELS = {
    "ci": FuzzLevel(name="ci", api_examples=25, stateful_scenarios=10, stateful_steps=6, crawl_values=6),
    "fuzz": FuzzLevel(name="fuzz", api_examples=200, stateful_scenarios=100, stateful_steps=10, crawl_values=40),
}


def fuzz_level() -> FuzzLevel:
    name = os.environ.get("SHOP_FUZZ_LEVEL", "ci")
    if name not in LEVELS:
        raise ValueError(f"SHOP_FUZZ_LEVEL={name!r}: use one of {sorted(LEVELS)}")
    return LEVELS[name]
