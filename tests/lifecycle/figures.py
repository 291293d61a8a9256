"""What the lifecycle model ran, counted across examples and printed at the end of the pytest run."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Figures:
    examples: int = 0
    steps: int = 0
    rules: Counter[str] = field(default_factory=Counter)
    faults_applied: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    orders: int = 0
    provider_calls: int = 0
    started_at: float | None = None
    finished_at: float | None = None

    def start(self) -> None:
        self.started_at = self.started_at or time.monotonic()

    def finish(self) -> None:
        self.finished_at = time.monotonic()

    def lines(self, *, level: str, command: str) -> list[str]:
        seconds = (self.finished_at or time.monotonic()) - (self.started_at or time.monotonic())
        return [
            f"lifecycle model ({level}): {self.examples} examples, {self.steps} state-machine steps, "
            f"{self.orders} orders, {self.provider_calls} provider calls, {seconds:.0f} s",
            "  fault kinds injected at the provider: "
            + (", ".join(f"{kind} {count}" for kind, count in sorted(self.faults_applied.items())) or "none"),
            "  rules: " + ", ".join(f"{rule} {count}" for rule, count in sorted(self.rules.items())),
            "  outcomes: " + ", ".join(f"{outcome} {count}" for outcome, count in sorted(self.outcomes.items())),
            f"  command: {command}",
        ]


# The main model's run (the twin, which runs with a defect put back, is not counted).
FIGURES = Figures()
