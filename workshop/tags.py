"""How the audit tells a twin's writes from the fixed path's, and one seat's from another's.

Twins and the fixed path write into the real shop's tables, on the same database, at the same time. Every row a
run touches belongs to a tagged account or a tagged product:

    accounts    ws-<seat>-<mode>-<side>-<nn>        e.g. ws-class-races-twin-03
    products    WS-<SEAT>-<CODE>-<T|F>-<nnnnn>     e.g. WS-CLASS-RACE-T-00001
    category    ws-<seat>-<mode>-<side>             one per side, so a list can grow on one side only

The audit counts, and the reset removes or restores, only rows with these tags; a real customer's order or a
catalog product can never match them.
"""

from __future__ import annotations

import re
from typing import Literal

Side = Literal["twin", "fixed"]
SIDES: tuple[Side, ...] = ("twin", "fixed")
SEAT_PATTERN = re.compile(r"^[a-z0-9]{1,8}$")

MODE_CODES = {
    "races": "RACE",
    "n-plus-one": "NPO",
    "capacity": "CAP",
    "authorization": "AUTH",
    "frontend-state": "FES",
    "observability": "OBS",
}


def check_seat(seat: str) -> str:
    if not SEAT_PATTERN.match(seat):
        raise ValueError(f"seat {seat!r}: 1-8 lowercase letters or digits (it goes into usernames and SKUs)")
    return seat


def account_prefix(seat: str, mode: str, side: Side) -> str:
    return f"ws-{check_seat(seat)}-{mode}-{side}-"


def username(seat: str, mode: str, side: Side, number: int) -> str:
    return f"{account_prefix(seat, mode, side)}{number:02d}"


def sku_prefix(seat: str, mode: str, side: Side) -> str:
    return f"WS-{check_seat(seat).upper()}-{MODE_CODES[mode]}-{side[0].upper()}-"


def sku(seat: str, mode: str, side: Side, number: int) -> str:
    return f"{sku_prefix(seat, mode, side)}{number:05d}"


def category_slug(seat: str, mode: str, side: Side) -> str:
    return f"ws-{check_seat(seat)}-{mode}-{side}"


def seat_for_user(user_id: int) -> str:
    """A student's seat on the teacher page: short, unique, and safe in a SKU."""
    return f"u{user_id}"
