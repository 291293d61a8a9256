"""The order and payment lifecycle as a state machine (tests/lifecycle/model.py), and its twin.

`make test` runs 200 programs from a fixed seed; `SHOP_FUZZ_LEVEL=fuzz` runs 1000 longer random ones. The twin
puts defect 1 back ("a declined card ends up paid": the simulator replays a decline as 200 and the client lets
the HTTP code decide) and shows the model finds it, so a green run means something.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis.errors import FlakyFailure
from hypothesis.stateful import run_state_machine_as_test
from zeal import zeal_ignore

import payments.client
from payments import simulator
from payments.client import SUCCEEDED, Charge, ProviderDeclined, ProviderUnavailable
from tests.capacity.infra import ProviderSimulator
from tests.lifecycle.figures import FIGURES, Figures
from tests.lifecycle.model import World, install, machine_for, model_settings

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(1800)]


@pytest.fixture(autouse=True)
def _the_model_repeats_queries_on_purpose() -> Iterator[None]:
    """The model reads the same rows after every step; the API requests keep their own N+1 checks."""
    with zeal_ignore():
        yield


def test_the_order_lifecycle_holds_under_every_program(
    lifecycle_provider: ProviderSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(provider=lifecycle_provider, figures=FIGURES)
    install(world, monkeypatch)
    FIGURES.start()
    try:
        run_state_machine_as_test(machine_for(world), settings=model_settings())
    finally:
        FIGURES.finish()
    assert FIGURES.examples >= model_settings().max_examples
    # The run exercised what it claims to: the faults reached the provider, and every kind of step ran.
    assert set(FIGURES.faults_applied) >= {"decline", "lose_answer", "timeout", "error", "unavailable"}
    assert set(FIGURES.rules) >= {
        "place_order",
        "cancel",
        "worker_deliver",
        "worker_deliver_twice_at_once",
        "worker_kill_mid_task",
        "worker_lose",
        "reconcile_now",
        "reconcile_redrive",
        "reconcile_abandon",
        "purge_keys",
        "capture_races_cancel",
        "capture_races_reconcile_abandon",
        "provider_fault",
        "provider_outage",
    }
    assert {"place_replayed", "place_key_reused_422", "capture_declined", "capture_worker_killed"} <= set(
        FIGURES.outcomes
    )


def http_code_decides(response: httpx.Response) -> Charge:
    """Defect 1's client, put back: 402 is the only decline, and any 200/201 is a success."""
    if response.status_code == 402:
        raise ProviderDeclined(response.json().get("id", ""))
    if response.status_code not in (200, 201):
        raise ProviderUnavailable(f"unexpected provider answer {response.status_code}")
    return Charge(charge_id=response.json().get("id") or "?", status=SUCCEEDED)


def test_twin_with_defect_1_put_back_the_model_finds_a_declined_card_paid(
    lifecycle_provider: ProviderSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    twin_figures = Figures()  # not the main run's
    world = World(provider=lifecycle_provider, figures=twin_figures)
    install(world, monkeypatch)
    # Protection off, at both named seams of the fix: the simulator replays a stored decline as 200 ...
    monkeypatch.setattr(simulator, "replay_status_code", lambda state, key: 200)
    # ... and the client decides on the HTTP code alone.
    monkeypatch.setattr(payments.client, "read_charge", http_code_decides)

    with pytest.raises((AssertionError, FlakyFailure)) as found:
        run_state_machine_as_test(machine_for(world), settings=model_settings(twin=True))

    failure: Any = found.value
    errors = failure.exceptions if isinstance(failure, FlakyFailure) else [failure]
    messages = " | ".join(str(error) for error in errors)
    print(f"twin: defect 1 found after {twin_figures.examples} complete programs: {messages}")
    assert "without a successful charge" in messages, messages
