"""The scorecard: `{"mode": "<mode>", "twin": {"<counter>": n, ...}, "fixed": {"<counter>": n, ...}}`.

Counters are violations, so zero is clean. A run passes when the twin broke (some counter above zero) and the
fix held (every counter zero); a fix-it check passes when both sides are clean.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workshop.modes import mode_get

Scorecard = dict[str, Any]


def scorecard_build(mode: str, counters: dict[str, dict[str, int]]) -> Scorecard:
    names = mode_get(mode).counter_names
    return {
        "mode": mode,
        "twin": {name: int(counters.get("twin", {}).get(name, 0)) for name in names},
        "fixed": {name: int(counters.get("fixed", {}).get(name, 0)) for name in names},
    }


def twin_broke(card: Scorecard) -> bool:
    return any(value > 0 for value in card["twin"].values())


def side_clean(card: Scorecard, side: str) -> bool:
    return all(value == 0 for value in card[side].values())


def verdict(card: Scorecard, *, check: bool = False) -> tuple[int, str]:
    """(exit code, sentence). A run: 0 when the twin broke and the fix held. A check: 0 when both are clean."""
    fixed_held = side_clean(card, "fixed")
    if check:
        if side_clean(card, "twin") and fixed_held:
            return 0, "your twin is clean: its scorecard matches the fix"
        return 1, "the twin still breaks: read the fix beside it and try again"
    if twin_broke(card) and fixed_held:
        return 0, "the twin broke and the fix held"
    if not fixed_held:
        return 1, "the FIX BROKE: the fixed path shows violations"
    return 1, "the twin did not break this time: the scenario is not doing its job"


def scorecard_text(card: Scorecard, *, title: str = "") -> str:
    mode = mode_get(card["mode"])
    labels = {counter.name: counter.label for counter in mode.counters}
    width = max(len(label) for label in labels.values())
    lines = [title or f"{mode.slug}: {mode.title}", f"  {'counter'.ljust(width)}   {'twin':>8}   {'fixed':>8}"]
    for name, label in labels.items():
        lines.append(f"  {label.ljust(width)}   {card['twin'][name]:>8}   {card['fixed'][name]:>8}")
    return "\n".join(lines)


def scorecard_write(card: Scorecard, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # One line, as the issue writes it: {"mode": ..., "twin": {...}, "fixed": {...}}.
    path.write_text(json.dumps(card) + "\n")
    return path
