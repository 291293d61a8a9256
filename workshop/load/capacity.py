"""capacity: a hundred customers check out at once while the payment provider takes a second per charge."""

from __future__ import annotations

from locust import task

from workshop.load.common import ADDRESS, LEDGER, SideUser, new_key


class CheckoutUser(SideUser):
    abstract = True

    @task
    def checkout(self) -> None:
        product_id = int(self.side_fixture["products"][0]["id"])
        if self.side == "twin":
            body = {"product_id": product_id, "quantity": 1, "shipping_address": ADDRESS}
            answer = self.send(
                "POST", self.twin_path("checkout/"), name="POST checkout", headers=self.bearer(), json_body=body
            )
        else:
            body = {"lines": [{"product_id": product_id, "quantity": 1}], "shipping_address": ADDRESS, "note": ""}
            answer = self.send(
                "POST",
                "/api/v1/orders/",
                name="POST checkout",
                headers={**self.bearer(), "Idempotency-Key": new_key()},
                json_body=body,
            )
        LEDGER.write("request", self.side, status=answer.status, error=answer.error)
        self.polite_wait(answer)
