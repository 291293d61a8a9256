"""Mail configuration: production refuses a missing or unsafe SMTP set-up at start-up, naming the variable; a
console or in-memory backend is refused in every mode; the timeouts and the lease must fit the task limits."""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from mail.configuration import MailSettings, mail_refusals
from tests.production import PRODUCTION_WITHOUT_MAIL, django_check

ROOT = Path(__file__).resolve().parents[2]

SAFE = MailSettings(
    backend_override="",
    host="smtp.relay.example",
    port=587,
    user="shop",
    password="relay-password",
    use_tls=True,
    use_ssl=False,
    from_address="Hardened Shop <orders@shop.example>",
    base_url="https://shop.example",
    connect_timeout_s=5,
    send_timeout_s=15,
    claim_lease_s=300,
    task_soft_time_limit_s=45,
    task_time_limit_s=60,
)


def test_a_complete_production_configuration_is_accepted() -> None:
    assert mail_refusals(SAFE, production=True) == []
    assert mail_refusals(replace(SAFE, host="127.0.0.1", use_tls=False, user="", password=""), production=True) == []


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"host": ""}, "EMAIL_HOST"),
        ({"use_tls": False}, "EMAIL_USE_TLS"),  # clear text across the network
        ({"use_tls": True, "use_ssl": True}, "EMAIL_USE_SSL"),
        ({"password": ""}, "EMAIL_HOST_PASSWORD"),  # a user without a password
        ({"from_address": ""}, "EMAIL_FROM"),
        ({"from_address": "Hardened Shop <shop@localhost>"}, "EMAIL_FROM"),  # the development default
        ({"base_url": "http://shop.example"}, "SHOP_BASE_URL"),
        ({"base_url": ""}, "SHOP_BASE_URL"),
        ({"backend_override": "django.core.mail.backends.console.EmailBackend"}, "EMAIL_BACKEND"),
        ({"connect_timeout_s": 30, "send_timeout_s": 30}, "EMAIL_SEND_TIMEOUT_S"),
        ({"claim_lease_s": 60}, "MAIL_CLAIM_LEASE_S"),
    ],
)
def test_each_unsafe_production_setting_is_refused_by_name(change: dict[str, object], variable: str) -> None:
    refusals = mail_refusals(replace(SAFE, **change), production=True)  # type: ignore[arg-type]
    assert any(variable in refusal for refusal in refusals), refusals


def test_in_development_only_the_rules_that_lose_mail_anywhere_apply() -> None:
    local = replace(SAFE, host="127.0.0.1", use_tls=False, user="", password="", from_address="", base_url="")
    assert mail_refusals(local, production=False) == []
    for backend in ("django.core.mail.backends.locmem.EmailBackend", "django.core.mail.backends.console.EmailBackend"):
        assert mail_refusals(replace(local, backend_override=backend), production=False)


def _manage_check(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("EMAIL_", "DJANGO_ENV"))}
    production = PRODUCTION_WITHOUT_MAIL
    return django_check({**clean, **production, **env})


def test_production_start_up_names_every_missing_mail_variable_at_once() -> None:
    result = _manage_check()
    assert result.returncode != 0
    for variable in ("EMAIL_HOST", "EMAIL_FROM", "SHOP_BASE_URL"):
        assert variable in result.stderr


def test_production_starts_with_a_real_relay() -> None:
    result = _manage_check(
        EMAIL_HOST="smtp.relay.example",
        EMAIL_HOST_USER="shop",
        EMAIL_HOST_PASSWORD="relay-password",
        EMAIL_FROM="Hardened Shop <orders@shop.example>",
        SHOP_BASE_URL="https://shop.example",
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_console_backend_is_refused_even_in_development() -> None:
    result = _manage_check(DJANGO_ENV="development", EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend")
    assert result.returncode != 0
    assert "EMAIL_BACKEND" in result.stderr
