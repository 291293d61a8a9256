"""How much a password hash must cost: the floor production holds ARGON2_* to (read by config/settings.py).

No Django imports: settings read this before Django is set up (as they read mail/configuration.py).
"""

from __future__ import annotations

# OWASP's argon2id table (Password Storage Cheat Sheet): memory in KiB and passes, one lane; each row gives the
# same defence against a stolen hash table. The shop ships the second row (accounts/hashers.py says why).
OWASP_ARGON2ID = ((47_104, 1), (19_456, 2), (12_288, 3), (9_216, 4), (7_168, 5))


def argon2_refusal(*, memory_kib: int, time_cost: int) -> str | None:
    """Why production must not hash with this cost, or None when it meets a row of OWASP's table (whose rows are
    for one lane: more lanes over the same memory and passes are no cheaper to attack)."""
    # Cheap hashes: a stolen table would then be guessed at millions of passwords a second.
    if not any(memory_kib >= memory and time_cost >= passes for memory, passes in OWASP_ARGON2ID):
        rows = ", ".join(f"{memory} KiB x {passes}" for memory, passes in OWASP_ARGON2ID)
        return (
            f"ARGON2_MEMORY_KIB={memory_kib} with ARGON2_TIME_COST={time_cost} is below every argon2id row OWASP "
            f"recommends ({rows})"
        )
    return None
