"""races: buyers double-click, cart two lines of one product, and all want the three scarce units.

Every user's first move is a double click on the scarce product (two identical POSTs at the same instant, one
Idempotency-Key): with the twin's race window that alone makes a duplicate order and oversells, every run.
"""

from __future__ import annotations

from typing import Any

import gevent
from locust import task

from workshop.load.common import ADDRESS, LEDGER, Answer, SideUser, new_key


class RacesUser(SideUser):
    abstract = True

    def on_start(self) -> None:
        # Every user, first: a double click on the scarce product, then an order from a client that did not merge
        # its cart (one product on two lines). So each run has its duplicates, its oversold units and its orphans.
        self.double_click(self.payload([(self.scarce, 1)]))
        self.unmerged_cart()

    def unmerged_cart(self) -> None:
        product = self.rng.choice(self.plenty)
        self.place(self.payload([(product, 1), (product, 2)]), new_key(), "two-lines-one-product")

    @property
    def scarce(self) -> int:
        return int(self.side_fixture["products"][0]["id"])

    @property
    def plenty(self) -> list[int]:
        return [int(product["id"]) for product in self.side_fixture["products"][1:]]

    def payload(self, lines: list[tuple[int, int]]) -> dict[str, Any]:
        return {
            "lines": [{"product_id": product_id, "quantity": quantity} for product_id, quantity in lines],
            "shipping_address": ADDRESS,
            "note": "",
        }

    def place(self, payload: dict[str, Any], key: str, via: str) -> Answer:
        path = self.twin_path("orders/") if self.side == "twin" else "/api/v1/orders/"
        answer = self.send(
            "POST", path, name="POST orders", headers={**self.bearer(), "Idempotency-Key": key}, json_body=payload
        )
        order_id = answer.data.get("id") if answer.status in (200, 201) and isinstance(answer.data, dict) else None
        LEDGER.write(
            "order",
            self.side,
            username=self.account["username"],
            key=key,
            status=answer.status,
            order_id=order_id,
            via=via,
        )
        return answer

    def double_click(self, payload: dict[str, Any]) -> None:
        key = new_key()
        clicks = [gevent.spawn(self.place, payload, key, "double-click") for _ in range(2)]
        gevent.joinall(clicks)

    @task
    def shop(self) -> None:
        roll = self.rng.random()
        if roll < 0.45:
            answer = self.place(
                self.payload([(self.rng.choice(self.plenty), self.rng.randint(1, 3))]), new_key(), "once"
            )
            self.polite_wait(answer)
        elif roll < 0.70:
            self.double_click(self.payload([(self.rng.choice(self.plenty), 1)]))
        elif roll < 0.85:
            self.double_click(self.payload([(self.scarce, 1)]))
        else:
            self.unmerged_cart()
