"""The teacher page and its actions, through the Django test client on the real database.

The page is staff only; it shows each mode's twin and fix as they are in the files right now; it starts a run
(the driver is a named seam, `workshop.services._spawn_driver`), resets, signs you in to try a side, runs the
exam without naming it; it has no inline script (a Content-Security-Policy is coming) and no CDN. The twins act
only for workshop accounts and only on workshop orders.
"""

from __future__ import annotations

import html
import inspect
import re
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from orders import placement as order_placement
from tests.conftest import bearer_client
from tests.factories import ProductFactory, UserFactory
from tests.orders.support import place
from workshop import services
from workshop.models import Run
from workshop.modes import MODES
from workshop.presets import preset_for

pytestmark = [pytest.mark.urls("tests.workshop.urls"), pytest.mark.django_db(transaction=True)]


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[Run]:
    """The driver process is not started here: the run row and what would be launched are what is tested."""
    started: list[Run] = []
    monkeypatch.setattr(services, "_spawn_driver", started.append)
    return started


def test_the_page_is_for_staff_only() -> None:
    customer = UserFactory.create(username="alice")
    assert Client().get("/workshop/").status_code == 302  # to the login page
    assert signed_in(customer).get("/workshop/").status_code == 403


def test_each_card_shows_the_twin_and_the_fix_from_their_files(teacher: User) -> None:
    page = signed_in(teacher).get("/workshop/").content.decode()

    assert page.count('class="panel workshop-card"') == len(MODES)
    # The real shop's placement use case, as orders/placement.py has it now, line for line.
    source_lines, first = inspect.getsourcelines(order_placement.order_placement)
    assert f'<span class="ln">{first}</span>{html.escape(source_lines[0].rstrip(), quote=True)}' in page
    # The twin's own file, its header first.
    assert html.escape("ANTI-PATTERN on purpose (workshop twin of races in writes)", quote=True) in page


def test_the_page_has_no_inline_script_no_inline_style_and_no_cdn(teacher: User) -> None:
    page = signed_in(teacher).get("/workshop/").content.decode()
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts and all(" src=" in tag for tag in scripts), scripts
    assert " style=" not in page
    assert not re.search(r"""(src|href)=["']https?://""", page)


def test_start_records_a_run_for_the_seat_and_refuses_a_second_one(teacher: User, spawned: list[Run]) -> None:
    client = signed_in(teacher)
    response = client.post("/workshop/races/run/")
    assert response.status_code == 302 and response["Location"] == "/workshop/#mode-races"
    assert [(run.mode, run.seat) for run in spawned] == [("races", f"u{teacher.pk}")]
    assert spawned[0].params == {"size": "standard", "duration_s": preset_for("races").duration_s}

    again = client.post("/workshop/races/run/", follow=True)
    assert "already going" in again.content.decode()
    assert len(spawned) == 1
    assert client.post("/workshop/no-such-mode/run/").status_code == 404


def test_the_chart_polls_the_runs_samples_and_a_student_sees_only_their_own(
    teacher: User, student: User, spawned: list[Run]
) -> None:
    signed_in(teacher).post("/workshop/races/run/")
    run = spawned[0]
    services.run_add_sample(
        run_id=run.pk, sample={"t": 2.0, "twin": {"units_oversold": 4}, "fixed": {"units_oversold": 0}}
    )

    report = signed_in(teacher).get(f"/workshop/runs/{run.pk}/").json()
    assert report["samples"] == [{"t": 2.0, "twin": {"units_oversold": 4}, "fixed": {"units_oversold": 0}}]
    assert [c["name"] for c in report["counters"]] == MODES["races"].counter_names
    assert signed_in(student).get(f"/workshop/runs/{run.pk}/").status_code == 404


def test_reset_removes_only_this_seats_twin_orders(teacher: User, student: User) -> None:
    preset = preset_for("races", "small")
    for seat in (f"u{teacher.pk}", f"u{student.pk}"):
        services.workshop_prepare(seat=seat, mode="races", preset=preset)
        buyer = services.side_accounts(seat, "races", "twin").order_by("username").first()
        product = services.side_products(seat, "races", "twin").order_by("id").last()
        assert buyer is not None and product is not None
        place(buyer, (product, 1), key=f"twin-{seat}")

    response = signed_in(teacher).post("/workshop/races/reset/", follow=True)

    assert "1 twin orders removed" in response.content.decode()
    assert not services.side_accounts(f"u{teacher.pk}", "races", "twin").filter(orders__isnull=False).exists()
    assert services.side_accounts(f"u{student.pk}", "races", "twin").filter(orders__isnull=False).count() == 1


def test_try_signs_you_in_as_the_sides_account_with_something_to_act_on(teacher: User) -> None:
    client = signed_in(teacher)
    response = client.post("/workshop/races/try/twin/")
    assert response.status_code == 302
    assert response["Location"] == f"/workshop/twin/races/checkout/?category=ws-u{teacher.pk}-races-twin"
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert f"ws-u{teacher.pk}-races-twin-01" in page.content.decode()

    fixed = signed_in(teacher).post("/workshop/races/try/fixed/")
    assert fixed["Location"] == "/cart/"


def test_the_exam_twin_answers_only_during_an_exam_and_under_a_neutral_url(teacher: User, spawned: list[Run]) -> None:
    assert Client().get("/workshop/exam/twin/products/").status_code == 404
    signed_in(teacher).post("/workshop/exam/start/")
    exam = spawned[0]
    page = signed_in(teacher).get("/workshop/").content.decode()
    assert f"Exam {exam.pk}" in page and "A twin is on" in page
    assert MODES[exam.mode].title not in page.split('id="exam"', 1)[1]

    signed_in(teacher).post(f"/workshop/exam/{exam.pk}/reveal/")
    revealed = signed_in(teacher).get("/workshop/").content.decode().split('id="exam"', 1)[1]
    assert MODES[exam.mode].title in html.unescape(revealed)


def test_twins_act_only_for_workshop_accounts_and_only_on_workshop_orders(db: Any) -> None:
    alice = UserFactory.create(username="alice")
    real_order = place(alice, (ProductFactory.create(), 1), key="real")
    services.workshop_prepare(seat="t1", mode="authorization", preset=preset_for("authorization", "small"))
    workshop_user = services.side_accounts("t1", "authorization", "twin").order_by("username").first()
    assert workshop_user is not None

    # A real customer's token is turned away by the lab's fence before the twin runs.
    refused = bearer_client(alice).post("/workshop/twin/observability/orders/", {"lines": []}, format="json")
    assert refused.status_code == 403
    # The unscoped twin can leak workshop orders, never a real customer's.
    assert bearer_client(workshop_user).get(f"/workshop/twin/authorization/orders/{real_order.pk}/").status_code == 404
    someone_elses = services.side_accounts("t1", "authorization", "twin").exclude(pk=workshop_user.pk).first()
    assert someone_elses is not None
    leaked = someone_elses.orders.first()
    assert leaked is not None
    answer = bearer_client(workshop_user).get(f"/workshop/twin/authorization/orders/{leaked.pk}/")
    assert answer.status_code == 200 and answer.json()["customer"] == someone_elses.pk  # the anti-pattern itself
