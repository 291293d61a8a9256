"""Password hashing with a stated cost: argon2id at the cost settings name (ARGON2_*), not Django's fixed one.

A login storm takes the CPU. Django's Argon2PasswordHasher hashes with 100 MiB of memory, 2 passes and 8
lanes: 206 ms of CPU per sign-in here, measured (loadtests/README.md, "Fifth pass"), spread over both cores by
argon2's own threads, outside the GIL and outside anything the load shedding sees. A hundred users signing in
over a few seconds (a ramp, the morning after a deploy that logged everyone out) is then 20 CPU-seconds: the
machine is full for ten seconds and every other request queues behind the hashing. OWASP's Password Storage
Cheat Sheet lists argon2id configurations of equal defence; the shop ships its second one (19 MiB, 2 passes,
1 lane: 21 ms of CPU per sign-in, one core), and production refuses anything weaker than the weakest of them
(accounts/password_cost.py).

The hash string carries the cost it was made with, so changing ARGON2_* never locks anybody out: a password
is checked with the cost in its own hash, and a hash made with another cost is re-made with the configured one
at that user's next successful sign-in (Django's `must_update`), in either direction.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import hashers


class Argon2PasswordHasher(hashers.Argon2PasswordHasher):
    """Django's argon2id hasher (same algorithm name, same hash format) with its cost read from settings.

    Properties, read on every hash: Django keeps one hasher instance per process, and a cost fixed at its creation
    would miss a settings override (the tests change the cost between two hashes)."""

    @property
    def time_cost(self) -> int:  # type: ignore[override]
        return settings.ARGON2_TIME_COST

    @property
    def memory_cost(self) -> int:  # type: ignore[override]
        return settings.ARGON2_MEMORY_KIB

    @property
    def parallelism(self) -> int:  # type: ignore[override]
        return settings.ARGON2_PARALLELISM
