"""observability: customers place orders, and every third order carries a line the shop cannot take.

A bad line is a product that left the catalog while it sat in a cart, or a quantity typed as words. The ledger
notes which requests carried one, and what they were told.
"""

from __future__ import annotations

from typing import Any

from locust import task

from workshop.load.common import ADDRESS, LEDGER, SideUser, new_key

GONE_PRODUCT = 2_000_000_000


class BuyerUser(SideUser):
    abstract = True

    def on_start(self) -> None:
        self.orders_sent = 0

    def lines(self, bad: bool) -> list[dict[str, Any]]:
        products = [int(product["id"]) for product in self.side_fixture["products"]]
        good: dict[str, Any] = {"product_id": products[0], "quantity": self.rng.randint(1, 2)}
        if not bad:
            return [good, {"product_id": products[1], "quantity": 1}] if self.rng.random() < 0.5 else [good]
        # The bad line comes first, as a cart sorted by when things were added would have it.
        if self.rng.random() < 0.5:
            return [{"product_id": GONE_PRODUCT, "quantity": 1}, good]
        return [{"product_id": products[1], "quantity": "two"}, good]

    @task
    def place(self) -> None:
        self.orders_sent += 1
        bad = self.orders_sent % 3 == 0
        body = {"lines": self.lines(bad), "shipping_address": ADDRESS, "note": ""}
        if self.side == "twin":
            answer = self.send(
                "POST", self.twin_path("orders/"), name="POST orders", headers=self.bearer(), json_body=body
            )
        else:
            headers = {**self.bearer(), "Idempotency-Key": new_key()}
            answer = self.send("POST", "/api/v1/orders/", name="POST orders", headers=headers, json_body=body)
        order_id = answer.data.get("id") if answer.status in (200, 201) and isinstance(answer.data, dict) else None
        LEDGER.write("order", self.side, bad=bad, status=answer.status, order_id=order_id, lines=len(body["lines"]))
        self.polite_wait(answer)
