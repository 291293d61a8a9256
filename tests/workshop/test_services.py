"""Workshop writes: seeding both sides alike, the reset (twin orders out, stock back the conserved way, the real
shop untouched), one run per seat and mode, the exam hidden until revealed, and the audit's counters on planted
data (each counter can see a violation, and does not see one where there is none)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Sum
from zeal import zeal_ignore

from accounts.models import User
from core.errors import Conflict
from observability.invariants import check_stock_conservation
from orders.models import Order, OrderLine
from shop.models import Product
from tests.concurrency import run_concurrently
from tests.factories import ProductFactory, UserFactory
from tests.orders.support import place
from workshop import tags
from workshop.audit import audit
from workshop.models import Run, RunStatus
from workshop.presets import preset_for
from workshop.selectors import run_report
from workshop.services import (
    exam_reveal,
    exam_start,
    run_create,
    run_finish,
    side_accounts,
    side_products,
    workshop_prepare,
    workshop_reset,
)
from workshop.twins import races

pytestmark = pytest.mark.django_db(transaction=True)  # the services own durable transactions

SEAT = "t1"


def ledger(tmp_path: Path, *entries: dict[str, Any]) -> Path:
    (tmp_path / "planted.jsonl").write_text("".join(json.dumps({"t": n, **e}) + "\n" for n, e in enumerate(entries)))
    return tmp_path


def twin_buys(user: User, product: Product, quantity: int = 1) -> None:
    payload = {"lines": [{"product_id": product.pk, "quantity": quantity}], "shipping_address": {"country": "DE"}}
    with zeal_ignore():
        races.place_order(user, payload)


def test_prepare_seeds_both_sides_alike_and_a_second_prepare_changes_nothing_but_the_tokens() -> None:
    preset = preset_for("races", "small")
    first = workshop_prepare(seat=SEAT, mode="races", preset=preset)
    second = workshop_prepare(seat=SEAT, mode="races", preset=preset)

    for side in tags.SIDES:
        assert side_accounts(SEAT, "races", side).count() == preset.users
        assert [p["stock"] for p in first["sides"][side]["products"]] == [3, 100_000, 100_000]
        assert [a["username"] for a in first["sides"][side]["accounts"]] == [
            a["username"] for a in second["sides"][side]["accounts"]
        ]
    assert side_accounts(SEAT, "races", "twin").first().username.startswith("ws-t1-races-twin-")  # type: ignore[union-attr]


def test_twin_oversells_for_real_and_reset_restores_it_without_touching_the_real_shop(
    tmp_path: Path, settings: Any
) -> None:
    # The real shop: a customer, a product, an order.
    alice = UserFactory.create(username="alice")
    teapot = ProductFactory.create(stock_on_hand=10)
    real_order = place(alice, (teapot, 2))
    before = (
        Product.objects.values_list("stock_on_hand", "stock_received").get(pk=teapot.pk),
        real_order.lines.count(),
    )

    workshop_prepare(seat=SEAT, mode="races", preset=preset_for("races", "small"))
    scarce = side_products(SEAT, "races", "twin").order_by("id").first()
    assert scarce is not None and scarce.stock_on_hand == 3
    buyers = list(side_accounts(SEAT, "races", "twin").order_by("username"))
    settings.WORKSHOP_RACE_WINDOW_MS = 300  # the twin's read and write, this far apart: five buyers, one window

    run_concurrently(lambda n: twin_buys(buyers[n], scarce), 5)

    counters = audit(seat=SEAT, mode="races", ledger_dir=ledger(tmp_path), sides=("twin",))["twin"]
    sold = OrderLine.objects.filter(order__customer__in=buyers).aggregate(units=Sum("quantity"))["units"]
    assert sold == 5  # five orders for three units: every buyer read "3 left"
    assert counters["units_oversold"] > 0
    assert not check_stock_conservation().ok

    report = workshop_reset(seat=SEAT, mode="races")

    assert report.orders_removed == 5
    assert not Order.objects.filter(customer__in=buyers).exists()
    scarce.refresh_from_db()
    assert (scarce.stock_on_hand, scarce.stock_received) == (3, 3)
    assert check_stock_conservation().ok
    # Nothing of the real shop moved.
    assert Order.objects.filter(pk=real_order.pk).exists()
    after = (Product.objects.values_list("stock_on_hand", "stock_received").get(pk=teapot.pk), real_order.lines.count())
    assert after == before


def test_reset_tops_the_fixed_side_up_the_conserved_way_and_keeps_its_orders() -> None:
    workshop_prepare(seat=SEAT, mode="races", preset=preset_for("races", "small"))
    buyer = side_accounts(SEAT, "races", "fixed").order_by("username").first()
    scarce = side_products(SEAT, "races", "fixed").order_by("id").first()
    assert buyer is not None and scarce is not None
    fixed_order = place(buyer, (scarce, 3))

    workshop_reset(seat=SEAT, mode="races")

    scarce.refresh_from_db()
    assert (scarce.stock_on_hand, scarce.stock_received) == (3, 6)  # 3 more received, 3 still in the order
    assert Order.objects.filter(pk=fixed_order.pk).exists()
    assert check_stock_conservation().ok


def test_one_active_run_per_seat_and_mode() -> None:
    first = run_create(mode="races", seat=SEAT, params={})
    with pytest.raises(Conflict):
        run_create(mode="races", seat=SEAT, params={})
    other_seat = run_create(mode="races", seat="t2", params={})
    other_mode = run_create(mode="capacity", seat=SEAT, params={})
    run_finish(run_id=first.pk, scorecard={"mode": "races", "twin": {}, "fixed": {}}, verdict="done", exit_code=0)
    again = run_create(mode="races", seat=SEAT, params={})
    assert {other_seat.status, other_mode.status, again.status} == {RunStatus.STARTING}


def test_the_exam_picks_a_twin_at_random_and_hides_it_until_revealed() -> None:
    exam = exam_start(started_by=None, params={"duration_s": 60}, chooser=random.Random(7))
    expected = random.Random(7).choice(
        sorted(["races", "n-plus-one", "capacity", "authorization", "frontend-state", "observability"])
    )
    hidden = run_report(run=exam)
    assert exam.mode == expected
    assert hidden["mode"] is None and hidden["title"] == "an unnamed twin" and hidden["counters"] == []
    assert expected not in json.dumps(hidden)
    with pytest.raises(Conflict):
        exam_start(started_by=None, params={})

    shown = run_report(run=exam_reveal(run_id=exam.pk))
    assert shown["mode"] == expected


# --- The audit on planted data ---------------------------------------------------------------------------------


def test_races_counts_one_duplicate_per_extra_order_id_for_a_key(tmp_path: Path) -> None:
    planted = ledger(
        tmp_path,
        {"kind": "order", "side": "twin", "username": "u1", "key": "k1", "order_id": 1},
        {"kind": "order", "side": "twin", "username": "u1", "key": "k1", "order_id": 2},
        {"kind": "order", "side": "fixed", "username": "u1", "key": "k1", "order_id": 3},
        {"kind": "order", "side": "fixed", "username": "u1", "key": "k1", "order_id": 3},  # a replay: same order
        {"kind": "order", "side": "fixed", "username": "u1", "key": "k2", "order_id": None},  # 409 in flight
    )
    counters = audit(seat=SEAT, mode="races", ledger_dir=planted)
    assert counters["twin"]["duplicate_orders_per_key"] == 1
    assert counters["fixed"]["duplicate_orders_per_key"] == 0


def test_authorization_counts_other_peoples_records_answered_2xx_and_nothing_else(tmp_path: Path) -> None:
    probe = {"kind": "probe", "side": "twin", "method": "GET"}
    planted = ledger(
        tmp_path,
        {**probe, "username": "curious", "owner": "owner", "order_id": 11, "status": 200},
        {**probe, "username": "curious", "owner": "owner", "order_id": 11, "status": 200},  # the same record
        {**probe, "username": "curious", "owner": "owner", "order_id": 12, "status": 404},
        {**probe, "username": "owner", "owner": "owner", "order_id": 13, "status": 200},  # their own
    )
    assert audit(seat=SEAT, mode="authorization", ledger_dir=planted)["twin"] == {"records_leaked_to_other_users": 1}


def test_frontend_state_counts_a_saved_edit_that_is_not_in_the_order(tmp_path: Path) -> None:
    workshop_prepare(
        seat=SEAT, mode="frontend-state", preset=preset_for("frontend-state", "small"), orders_per_editor=2
    )
    owner = side_accounts(SEAT, "frontend-state", "twin").order_by("username").first()
    kept, lost = Order.objects.filter(customer=owner).order_by("id")[:2]
    Order.objects.filter(pk__in=[kept.pk, lost.pk]).update(note="tab A", shipping_city="Tab B city")
    edit = {"kind": "edit", "side": "twin", "accepted": True}
    planted = ledger(
        tmp_path,
        {**edit, "order_id": kept.pk, "field": "note", "value": "tab A"},
        {**edit, "order_id": kept.pk, "field": "shipping_city", "value": "Tab B city"},
        {**edit, "order_id": lost.pk, "field": "note", "value": "an earlier edit"},  # replaced by a later one: fine
        {**edit, "order_id": lost.pk, "field": "note", "value": "tab A again"},  # told saved, not there: lost
        {**edit, "order_id": lost.pk, "field": "shipping_city", "value": "refused", "accepted": False},
        {"kind": "spinner", "side": "twin", "resolved": False},
        {"kind": "spinner", "side": "twin", "resolved": True},
    )
    assert audit(seat=SEAT, mode="frontend-state", ledger_dir=planted, sides=("twin",))["twin"] == {
        "lost_edits": 1,
        "requests_never_resolved": 1,
    }


def test_runs_whose_driver_stopped_reporting_stop_counting_as_active() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from workshop.services import runs_expire

    stale = run_create(mode="races", seat=SEAT, params={})
    Run.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert runs_expire() == 1
    assert Run.objects.get(pk=stale.pk).status == RunStatus.FAILED
    run_create(mode="races", seat=SEAT, params={})  # the seat is free again


def test_a_room_runs_at_most_the_configured_number_at_once(settings: Any) -> None:
    settings.WORKSHOP_MAX_ACTIVE_RUNS = 2
    run_create(mode="races", seat="s1", params={})
    run_create(mode="races", seat="s2", params={})
    with pytest.raises(Conflict, match="2 runs are going"):
        run_create(mode="races", seat="s3", params={})
    exam_start(started_by=None, params={})  # the exam is the teacher's, outside the room's count
