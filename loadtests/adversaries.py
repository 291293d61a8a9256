"""Users who push on the edges: concurrent editors, the curious, and customers who cancel (sometimes twice)."""

from __future__ import annotations

import random

import gevent
from locust import between, task

from loadtests.buyers import PLACE_EXPECT, CustomerUser, report_violation
from loadtests.common import CATALOG, LEDGER, Result, call, new_key, order_payload

EDIT_EXPECT = {"200", "412 precondition_failed", "409 not_editable"}
CANCEL_EXPECT = {"200", "409 not_cancellable", "409 busy"}


class Editor(CustomerUser):
    """Two or three tabs edit the same order from the same ETag: exactly one may win, the rest get 412."""

    weight = 1
    wait_time = between(2, 6)

    @task
    def edit_race(self) -> None:
        if self.ready() is None or not CATALOG.product_ids:
            return
        assert self.session is not None
        token = self.session.access
        created = self.place(
            order_payload(self.pick_products(1)), new_key("edit"), expect=PLACE_EXPECT, via="api-editor"
        )
        if created.status != 201:
            return
        order_id = created.data["id"]
        # The tabs start from the ETag of the 201 at once: the order is editable only until it is paid, which
        # the worker does within a few hundred milliseconds. A later start mostly measures 409 not_editable.
        etag = created.headers.get("etag")
        if not etag:
            report_violation(self, "CHECK 201 carries an ETag", f"order {order_id} was created without an ETag")
            return
        if random.random() < 0.1:
            # A client that forgot the precondition is told to send one, not allowed to overwrite blindly.
            call(
                self,
                "PATCH",
                f"/api/v1/orders/{order_id}/",
                name="PATCH /api/v1/orders/[id]/ (no If-Match)",
                expect={"428 precondition_required", "409 not_editable"},
                token=token,
                json_body={"note": "blind write"},
            )
        tabs = [
            gevent.spawn(self.edit, order_id, etag, f"tab {n}: leave at the door") for n in range(random.randint(2, 3))
        ]
        gevent.joinall(tabs)
        results = [tab.value for tab in tabs if tab.value is not None]
        winners = [r for r in results if r.status == 200]
        if len(winners) > 1:
            report_violation(
                self, "CHECK one edit per version", f"order {order_id}: {len(winners)} edits won from {etag}"
            )
        losers = [r for r in results if r.outcome == "412 precondition_failed"]
        if losers and winners:
            # What a good client does with 412: read again, re-apply, send with the new ETag.
            fresh = call(
                self, "GET", f"/api/v1/orders/{order_id}/", name="GET /api/v1/orders/[id]/", expect={"200"}, token=token
            )
            if fresh.status == 200 and fresh.headers.get("etag"):
                self.edit(order_id, fresh.headers["etag"], "re-applied after 412")

    def edit(self, order_id: int, etag: str, note: str) -> Result:
        assert self.session is not None
        return call(
            self,
            "PATCH",
            f"/api/v1/orders/{order_id}/",
            name="PATCH /api/v1/orders/[id]/",
            expect=EDIT_EXPECT,
            token=self.session.access,
            headers={"If-Match": etag},
            json_body={"note": note},
        )


class Curious(CustomerUser):
    """Guesses other customers' order ids. Every probe must be a 404: not 200, and not 403 (no existence leak)."""

    weight = 1
    wait_time = between(1, 4)
    pool = "curious"

    def target(self) -> tuple[int, str]:
        others = [
            (oid, owner) for oid, owner in CATALOG.recent_orders if self.session and owner != self.session.username
        ]
        if others and random.random() < 0.8:
            return random.choice(others)
        return random.randint(1, max(CATALOG.max_order_id, 10)), "unknown"

    @task
    def peek(self) -> None:
        if self.ready() is None:
            return
        assert self.session is not None
        order_id, owner = self.target()
        token = self.session.access
        probes = [
            ("GET", f"/api/v1/orders/{order_id}/", "GET /api/v1/orders/[someone else's]/", None, None),
            (
                "PATCH",
                f"/api/v1/orders/{order_id}/",
                "PATCH /api/v1/orders/[someone else's]/",
                {"If-Match": '"1"'},
                {"note": "mine now"},
            ),
            ("POST", f"/api/v1/orders/{order_id}/cancel/", "POST /api/v1/orders/[someone else's]/cancel/", None, None),
        ]
        method, path, name, headers, body = random.choice(probes)
        result = call(self, method, path, name=name, expect={"404"}, token=token, headers=headers, json_body=body)
        LEDGER.write(
            "curious",
            username=self.session.username,
            order_id=order_id,
            owner=owner,
            method=method,
            path=path,
            status=result.status,
        )
        if CATALOG.web_pages and random.random() < 0.3:
            html = call(
                self,
                "GET",
                f"/orders/{order_id}/",
                name="GET /orders/[someone else's]/ (html)",
                expect={"404", "302"},
                allow_redirects=False,
            )
            LEDGER.write(
                "curious",
                username="anonymous",
                order_id=order_id,
                owner=owner,
                method="GET",
                path=f"/orders/{order_id}/",
                status=html.status,
            )
        if random.random() < 0.2:
            anonymous = call(
                self, "GET", f"/api/v1/orders/{order_id}/", name="GET /api/v1/orders/[id]/ (anonymous)", expect={"401"}
            )
            LEDGER.write(
                "curious",
                username="anonymous",
                order_id=order_id,
                owner=owner,
                method="GET",
                path=f"/api/v1/orders/{order_id}/",
                status=anonymous.status,
            )


class Canceller(CustomerUser):
    """Buys, then cancels: sometimes at once, sometimes after paying, sometimes twice (in parallel)."""

    weight = 1
    wait_time = between(2, 6)

    @task
    def buy_and_cancel(self) -> None:
        if self.ready() is None or not CATALOG.product_ids:
            return
        assert self.session is not None
        created = self.place(
            order_payload(self.pick_products(random.randint(1, 2))),
            new_key("cancel"),
            expect=PLACE_EXPECT,
            via="api-canceller",
        )
        if created.status != 201:
            return
        order_id = created.data["id"]
        gevent.sleep(random.choice([0, 0.2, 1.0]))  # before or after the payment is captured
        twice = random.random()
        if twice < 0.3:
            pair = [gevent.spawn(self.cancel, order_id) for _ in range(2)]
            gevent.joinall(pair)
            results = [g.value for g in pair if g.value is not None]
        else:
            results = [self.cancel(order_id)]
            if twice < 0.6:
                results.append(self.cancel(order_id))  # the impatient second click
        statuses = {r.data.get("status") for r in results if r.status == 200 and isinstance(r.data, dict)}
        if statuses and statuses != {"cancelled"}:
            report_violation(self, "CHECK cancel answers cancelled", f"order {order_id}: {sorted(statuses)}")
        LEDGER.write("cancel", username=self.session.username, order_id=order_id, outcomes=[r.outcome for r in results])

    def cancel(self, order_id: int) -> Result:
        assert self.session is not None
        return call(
            self,
            "POST",
            f"/api/v1/orders/{order_id}/cancel/",
            name="POST /api/v1/orders/[id]/cancel/",
            expect=CANCEL_EXPECT,
            token=self.session.access,
        )
