"""Each mode's bounded load preset: how many seeded users per side, for how long, and what the mode needs.

Both sides always get the same preset, so they see the same offered load at the same time. `standard` is what
`make workshop-run` and the teacher page run; `small` is the CI size (tests/workshop/) and `make workshop-check`.
Every figure can be overridden from the environment (WORKSHOP_USERS, WORKSHOP_DURATION_S).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Preset:
    users: int  # per side
    duration_s: float
    spawn_rate: float
    think_min_s: float
    think_max_s: float
    # races: the scarce product's units; authorization: curious users; n-plus-one: catalog sizes;
    # frontend-state: browser attempts; capacity: provider latency and the client's patience.
    scarce_stock: int = 3
    curious: int = 3
    rows_small: int = 100
    rows_large: int = 10_000
    browser_attempts: int = 2
    provider_latency_ms: int = 0
    client_timeout_s: float = 30.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


STANDARD: dict[str, Preset] = {
    "races": Preset(users=20, duration_s=45, spawn_rate=20, think_min_s=1, think_max_s=3),
    "n-plus-one": Preset(users=2, duration_s=40, spawn_rate=2, think_min_s=1, think_max_s=2),
    "capacity": Preset(
        users=100,
        duration_s=45,
        spawn_rate=50,
        think_min_s=4,
        think_max_s=8,
        provider_latency_ms=1000,
        client_timeout_s=10,
    ),
    "authorization": Preset(users=10, duration_s=30, spawn_rate=10, think_min_s=1, think_max_s=3, curious=3),
    "frontend-state": Preset(users=5, duration_s=30, spawn_rate=5, think_min_s=2, think_max_s=4),
    "observability": Preset(users=10, duration_s=30, spawn_rate=10, think_min_s=1, think_max_s=3),
}

SMALL: dict[str, Preset] = {
    "races": Preset(users=6, duration_s=8, spawn_rate=6, think_min_s=0.5, think_max_s=1.5),
    "n-plus-one": Preset(users=1, duration_s=9, spawn_rate=1, think_min_s=0.5, think_max_s=1, rows_large=400),
    "capacity": Preset(
        users=20,
        duration_s=10,
        spawn_rate=20,
        think_min_s=1,
        think_max_s=2,
        provider_latency_ms=800,
        client_timeout_s=6,
    ),
    "authorization": Preset(users=3, duration_s=6, spawn_rate=3, think_min_s=0.5, think_max_s=1, curious=2),
    "frontend-state": Preset(users=2, duration_s=6, spawn_rate=2, think_min_s=1, think_max_s=2, browser_attempts=1),
    "observability": Preset(users=3, duration_s=6, spawn_rate=3, think_min_s=0.5, think_max_s=1),
}

PRESETS = {"standard": STANDARD, "small": SMALL}


def preset_for(mode: str, size: str = "standard") -> Preset:
    preset = PRESETS[size][mode]
    overrides: dict[str, Any] = {}
    if os.environ.get("WORKSHOP_USERS"):
        overrides["users"] = int(os.environ["WORKSHOP_USERS"])
        overrides["spawn_rate"] = max(preset.spawn_rate, float(overrides["users"]))
    if os.environ.get("WORKSHOP_DURATION_S"):
        overrides["duration_s"] = float(os.environ["WORKSHOP_DURATION_S"])
    return replace(preset, **overrides)
