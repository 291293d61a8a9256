"""The provider simulator itself: faults on request are deterministic, and its controls can be locked."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from payments import simulator
from tests.capacity.infra import ProviderSimulator, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


def charge(url: str, key: str, timeout: float = 5) -> httpx.Response:
    return httpx.post(f"{url}/v1/charges", json={"amount": "1.00"}, headers={"Idempotency-Key": key}, timeout=timeout)


# --- Faults on request ---------------------------------------------------------------------------------------------


def test_a_fault_applies_to_exactly_the_next_n_matching_calls(provider: ProviderSimulator) -> None:
    provider.control(faults=[{"kind": "error", "calls": 2, "on": "charge"}])

    lookup = httpx.get(f"{provider.url}/v1/charges", params={"idempotency_key": "a"})  # not a charge: untouched
    answers = [charge(provider.url, key).status_code for key in ("a", "b", "c")]

    assert lookup.status_code == 404
    assert answers == [500, 500, 201]
    stats = provider.stats()
    assert stats["faults_applied"] == {"error": 2}
    assert stats["pending_faults"] == []
    assert stats["charges_per_key"] == {"c": 1}  # a 5xx before any work charged nothing


def test_lose_answer_does_the_work_and_drops_the_connection(provider: ProviderSimulator) -> None:
    provider.control(faults=[{"kind": "lose_answer"}])
    with pytest.raises(httpx.RemoteProtocolError):
        charge(provider.url, "lost")
    assert provider.stats()["charges_per_key"] == {"lost": 1}
    assert charge(provider.url, "lost").status_code == 201  # the repeat gets the charge that was made


def test_late_answer_does_the_work_and_answers_after_the_client_gave_up(provider: ProviderSimulator) -> None:
    provider.control(faults=[{"kind": "late_answer", "delay_ms": 300}])
    with pytest.raises(httpx.ReadTimeout):
        charge(provider.url, "late", timeout=0.1)
    assert wait_until(lambda: provider.stats()["charges_per_key"] == {"late": 1}, timeout_s=5)


def test_timeout_holds_the_call_and_does_no_work(provider: ProviderSimulator) -> None:
    provider.control(faults=[{"kind": "timeout", "delay_ms": 300}])
    with pytest.raises(httpx.ReadTimeout):
        charge(provider.url, "held", timeout=0.1)
    assert wait_until(lambda: provider.stats()["faults_applied"] == {"timeout": 1}, timeout_s=5)
    assert provider.stats()["charges"] == 0


def test_an_outcome_and_a_delivery_fault_combine_on_one_call(provider: ProviderSimulator) -> None:
    provider.control(faults=[{"kind": "decline"}, {"kind": "ok_status"}, {"kind": "unavailable"}])
    first = charge(provider.url, "k")
    second = charge(provider.url, "k")

    assert (first.status_code, first.json()["status"]) == (200, "declined")
    assert second.status_code == 503
    assert charge(provider.url, "k").status_code == 402  # the replay carries the original code


def test_an_unknown_fault_is_refused_and_nothing_is_queued(provider: ProviderSimulator) -> None:
    refused = httpx.post(f"{provider.url}/_control", json={"faults": [{"kind": "meteor"}]})
    assert refused.status_code == 400
    assert provider.stats()["pending_faults"] == []


def test_reset_forgets_queued_faults(provider: ProviderSimulator) -> None:
    provider.control(faults=[{"kind": "error", "calls": 5}])
    provider.reset()
    assert charge(provider.url, "k").status_code == 201


# --- The control token -----------------------------------------------------------------------------------------


@pytest.fixture
def locked_simulator() -> Iterator[str]:
    server = simulator.serve("127.0.0.1", 0, control_token="s3cret", state=simulator.ProviderState())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "s3cret", "Bearer s3cret2"])
def test_with_a_token_the_controls_refuse_anyone_without_it(locked_simulator: str, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    before = httpx.get(f"{locked_simulator}/_stats", headers={"Authorization": "Bearer s3cret"}).json()

    control = httpx.post(f"{locked_simulator}/_control", json={"outage": True}, headers=headers)
    stats = httpx.get(f"{locked_simulator}/_stats", headers=headers)

    assert (control.status_code, stats.status_code) == (403, 403)
    assert "charges_per_key" not in stats.text
    after = httpx.get(f"{locked_simulator}/_stats", headers={"Authorization": "Bearer s3cret"}).json()
    assert after["outage"] is before["outage"] is False


def test_with_a_token_the_right_bearer_controls_and_the_api_stays_open(locked_simulator: str) -> None:
    auth = {"Authorization": "Bearer s3cret"}
    assert httpx.post(f"{locked_simulator}/_control", json={"reset": True}, headers=auth).status_code == 200
    assert charge(locked_simulator, "open-api").status_code == 201  # the payment API needs no control token
    stats = httpx.get(f"{locked_simulator}/_stats", headers=auth)
    assert stats.status_code == 200
    assert stats.json()["charges_per_key"] == {"open-api": 1}


def test_without_a_token_the_controls_are_open(provider: ProviderSimulator) -> None:
    assert httpx.post(f"{provider.url}/_control", json={}).status_code == 200
    assert httpx.get(f"{provider.url}/_stats").status_code == 200


@pytest.mark.parametrize("how", ["flag", "env"])
def test_the_command_line_takes_the_token_from_a_flag_or_the_environment(how: str) -> None:
    port = free_port()
    command = [sys.executable, "-m", "payments.simulator", "--port", str(port)]
    env = {key: value for key, value in os.environ.items() if key != simulator.CONTROL_TOKEN_ENV}
    if how == "flag":
        command += ["--control-token", "t0ken"]
    else:
        env[simulator.CONTROL_TOKEN_ENV] = "t0ken"
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(up, timeout_s=20)
        assert httpx.get(f"{url}/_stats").status_code == 403
        assert httpx.get(f"{url}/_stats", headers={"Authorization": "Bearer t0ken"}).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize(
    "controls", [[1, 2], {"faults": "lose_answer"}, {"faults": [["kind"]]}, {"reset": True, "latency_ms": "x"}]
)
def test_malformed_controls_are_400_and_change_nothing(provider: ProviderSimulator, controls: object) -> None:
    refused = httpx.post(f"{provider.url}/_control", json=controls)
    assert refused.status_code == 400
    stats = provider.stats()
    assert (stats["pending_faults"], stats["latency_ms"]) == ([], 0)
