"""The workshop's locust preset: the mode's user class, once per side, the same number of users on each.

Run by workshop/run.py (never by hand): WORKSHOP_MODE, WORKSHOP_FIXTURE, WORKSHOP_LEDGER_DIR,
WORKSHOP_TWIN_HOST, WORKSHOP_FIXED_HOST; WORKSHOP_SIDES=twin for an exam (the twin alone).
"""

from __future__ import annotations

import os

from locust import User

from workshop.load.authorization import CuriousUser, OwnerUser
from workshop.load.capacity import CheckoutUser
from workshop.load.common import FIXTURE, HOSTS, MODE, PRESET
from workshop.load.frontend_state import EditorUser
from workshop.load.n_plus_one import ListUser
from workshop.load.observability import BuyerUser
from workshop.load.races import RacesUser

BEHAVIOURS: dict[str, list[type[User]]] = {
    "races": [RacesUser],
    "n-plus-one": [ListUser],
    "capacity": [CheckoutUser],
    "authorization": [OwnerUser, CuriousUser],
    "frontend-state": [EditorUser],
    "observability": [BuyerUser],
}
SIDES = os.environ.get("WORKSHOP_SIDES", "twin,fixed").split(",")

for _behaviour in BEHAVIOURS[MODE]:
    for _side in SIDES:
        _role = getattr(_behaviour, "role", "accounts")
        _count = len(FIXTURE["sides"][_side].get(_role, [])) or int(PRESET["users"])
        _name = f"{_side.capitalize()}{_behaviour.__name__}"
        globals()[_name] = type(_name, (_behaviour,), {"side": _side, "host": HOSTS[_side], "fixed_count": _count})
