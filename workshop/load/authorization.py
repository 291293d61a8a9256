"""authorization: owners read and edit their own orders; the curious count through everyone else's."""

from __future__ import annotations

from typing import Any

from locust import task

from workshop.load.common import LEDGER, SideUser


class OrderReader(SideUser):
    abstract = True

    def order_path(self, order_id: int) -> str:
        return self.twin_path(f"orders/{order_id}/") if self.side == "twin" else f"/api/v1/orders/{order_id}/"

    def others_orders(self) -> list[tuple[int, str]]:
        return [
            (int(order_id), account["username"])
            for account in self.side_fixture["accounts"]
            for order_id in account.get("orders", [])
            if account["username"] != self.account["username"]
        ]

    def probe(self, order_id: int, owner: str, method: str, body: Any = None) -> None:
        headers = self.bearer()
        if method == "PATCH" and self.side == "fixed":
            headers["If-Match"] = '"1"'  # the first version: a guess, as a stranger would send it
        answer = self.send(method, self.order_path(order_id), name=f"{method} order", headers=headers, json_body=body)
        LEDGER.write(
            "probe",
            self.side,
            username=self.account["username"],
            owner=owner,
            order_id=order_id,
            method=method,
            status=answer.status,
        )
        self.polite_wait(answer)


class OwnerUser(OrderReader):
    abstract = True

    @task
    def read_own(self) -> None:
        order_id = self.rng.choice(self.account["orders"])
        self.probe(order_id, self.account["username"], "GET")


class CuriousUser(OrderReader):
    abstract = True
    role = "curious"

    @task
    def read_someone_elses(self) -> None:
        order_id, owner = self.rng.choice(self.others_orders())
        self.probe(order_id, owner, "GET")
        if self.rng.random() < 0.3:
            self.probe(order_id, owner, "PATCH", {"note": f"tampered by {self.account['username']}"})
