"""Settings fail loudly on bad values, and production mode refuses an unsafe configuration."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.utils.module_loading import import_string

from tests.production import production_environment

ROOT = Path(__file__).resolve().parents[2]


# Variables the Makefile or a developer's shell may export, which would mask what each test sets.
PRODUCTION_SENSITIVE = {
    "DJANGO_ENV",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "DEMO_MODE",
    "PAYMENT_PROVIDER_URL",
    "FAST_PASSWORD_HASHER",
    "ARGON2_MEMORY_KIB",
    "ARGON2_TIME_COST",
    "ARGON2_PARALLELISM",
    "AXES_ENABLED",
    "THROTTLE_TRUSTED_PROXIES",
    "EMAIL_HOST",
    "EMAIL_PORT",
    "EMAIL_USE_TLS",
    "EMAIL_USE_SSL",
    "EMAIL_HOST_USER",
    "EMAIL_HOST_PASSWORD",
    "EMAIL_FROM",
    "SHOP_BASE_URL",
    "EMAIL_BACKEND",
}


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if key not in PRODUCTION_SENSITIVE}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = _manage("check", DJANGO_ENV="production", ALLOWED_HOSTS="shop.example.com")
    assert result.returncode != 0
    assert "needs SECRET_KEY" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    result = _manage("check", DJANGO_ENV="production", SECRET_KEY=secrets.token_urlsafe(60), ALLOWED_HOSTS="")
    assert result.returncode != 0
    assert "needs ALLOWED_HOSTS" in result.stderr


def test_a_bad_boolean_fails_loudly():
    result = _manage("check", DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


def test_an_argon2_memory_too_small_for_its_lanes_fails_loudly_at_start_up_not_at_each_sign_in():
    result = _manage("check", ARGON2_MEMORY_KIB="16", ARGON2_PARALLELISM="4")
    assert result.returncode != 0
    assert "ARGON2_MEMORY_KIB=16 is below 8 KiB per lane (ARGON2_PARALLELISM=4)" in result.stderr


def test_the_same_memory_with_one_lane_starts():
    result = _manage("check", ARGON2_MEMORY_KIB="16", ARGON2_PARALLELISM="1")
    assert result.returncode == 0, result.stderr


def _production(**overrides: str) -> dict[str, str]:
    """A production environment that starts; each refusal test changes one thing."""
    return production_environment(**overrides)


def test_check_deploy_is_clean_in_production_mode():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **_production())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    assert "DEMO_MODE" not in result.stdout + result.stderr  # a real shop logs no demo warning


# --- Test doubles and demo data on the production path (issue 12, item 6) ----------------------------------------


def _refused(result: subprocess.CompletedProcess[str], variable: str) -> bool:
    return result.returncode != 0 and "ImproperlyConfigured" in result.stderr and variable in result.stderr


def test_production_refuses_to_start_without_a_payment_provider_url():
    env = _production()
    del env["PAYMENT_PROVIDER_URL"]  # unset: would default to the simulator
    result = _manage("check", **env)
    assert _refused(result, "needs PAYMENT_PROVIDER_URL"), result.stderr


@pytest.mark.parametrize("simulator", ["http://127.0.0.1:8100", "http://provider:8100"])
def test_production_refuses_the_payment_simulator_without_the_demo_switch(simulator):
    result = _manage("check", **_production(PAYMENT_PROVIDER_URL=simulator))
    assert _refused(result, "refuses PAYMENT_PROVIDER_URL"), result.stderr
    assert "DEMO_MODE=true" in result.stderr  # the message says what would allow it


def test_the_demo_switch_allows_the_simulator_and_every_start_says_so():
    result = _manage("check", **_production(PAYMENT_PROVIDER_URL="http://provider:8100", DEMO_MODE="true"))
    assert result.returncode == 0, result.stderr
    logs = result.stdout + result.stderr  # JSON log lines go to stdout
    assert "DEMO_MODE=true" in logs and "Never run a real shop like this" in logs
    assert '"level": "warning"' in logs


def test_the_demo_switch_alone_defaults_to_the_local_simulator():
    env = _production(DEMO_MODE="true")
    del env["PAYMENT_PROVIDER_URL"]
    result = _manage("shell", "-c", "from django.conf import settings; print(settings.PAYMENT_PROVIDER_URL)", **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "http://127.0.0.1:8100"


@pytest.mark.parametrize("demo_mode", ["false", "true"])
def test_production_refuses_the_fast_password_hasher_even_in_demo_mode(demo_mode):
    result = _manage("check", **_production(FAST_PASSWORD_HASHER="true", DEMO_MODE=demo_mode))
    assert _refused(result, "refuses FAST_PASSWORD_HASHER=true"), result.stderr


@pytest.mark.parametrize(
    ("memory_kib", "time_cost"),
    [("19455", "2"), ("47103", "1"), ("7167", "9"), ("12288", "2")],  # each just under a row of OWASP's table
)
def test_production_refuses_password_hashes_cheaper_than_owasp_asks_for(memory_kib, time_cost):
    result = _manage("check", **_production(ARGON2_MEMORY_KIB=memory_kib, ARGON2_TIME_COST=time_cost, DEMO_MODE="true"))
    assert _refused(result, f"refuses ARGON2_MEMORY_KIB={memory_kib} with ARGON2_TIME_COST={time_cost}"), result.stderr


@pytest.mark.parametrize(("memory_kib", "time_cost"), [("47104", "1"), ("19456", "2"), ("7168", "5"), ("102400", "2")])
def test_production_starts_with_any_argon2_cost_owasp_recommends(memory_kib, time_cost):
    result = _manage("check", **_production(ARGON2_MEMORY_KIB=memory_kib, ARGON2_TIME_COST=time_cost))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("demo_mode", ["false", "true"])
def test_production_refuses_to_switch_the_login_lockout_off_even_in_demo_mode(demo_mode):
    result = _manage("check", **_production(AXES_ENABLED="false", DEMO_MODE=demo_mode))
    assert _refused(result, "refuses AXES_ENABLED=false"), result.stderr


def test_every_refusal_is_reported_at_once():
    env = _production(FAST_PASSWORD_HASHER="true", AXES_ENABLED="false", PAYMENT_PROVIDER_URL="http://provider:8100")
    del env["THROTTLE_TRUSTED_PROXIES"]
    result = _manage("check", **env)
    for variable in ("PAYMENT_PROVIDER_URL", "FAST_PASSWORD_HASHER", "AXES_ENABLED", "THROTTLE_TRUSTED_PROXIES"):
        assert _refused(result, variable), (variable, result.stderr)


def test_outside_production_the_test_doubles_stay_available():
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.PAYMENT_PROVIDER_URL, settings.DEMO_MODE)",
        DJANGO_ENV="development",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == ["http://127.0.0.1:8100", "False"]


def test_seed_demo_refuses_in_production_before_touching_the_database():
    # Nothing listens on port 9: had the command reached the database, it would fail with a connection error.
    offline = "postgres://shop@127.0.0.1:9/shop"
    result = _manage("seed_demo", **_production(DATABASE_URL=offline))
    assert result.returncode != 0
    assert "seed_demo refuses to run with DJANGO_ENV=production" in result.stderr
    assert "DEMO_MODE=true" in result.stderr
    assert "demo-password-123" not in result.stderr + result.stdout


def test_seed_demo_goes_past_the_refusal_with_the_demo_switch():
    offline = "postgres://shop@127.0.0.1:9/shop"
    env = _production(DATABASE_URL=offline, DEMO_MODE="true", PAYMENT_PROVIDER_URL="http://provider:8100")
    result = _manage("seed_demo", **env)
    assert result.returncode != 0
    assert "seed_demo refuses" not in result.stderr
    assert "OperationalError" in result.stderr  # it tried to write the demo data: the switch let it through


# --- The demo stack's mail sink: clear text allowed by the demo switch alone (mail/configuration.py) ----------------

# What the compose `demo` profile and the k8s `demo` overlay set: their own sink in the next container, no TLS.
DEMO_SINK = {"EMAIL_HOST": "mailsink", "EMAIL_PORT": "1025", "EMAIL_USE_TLS": "false"}


@pytest.mark.parametrize("host", ["mailsink", "smtp.relay.example", "10.0.0.25"])
def test_production_refuses_plain_text_smtp_to_another_host_without_the_demo_switch(host):
    # The twin of the allowance below: the same settings, only DEMO_MODE differs.
    result = _manage("check", **_production(**{**DEMO_SINK, "EMAIL_HOST": host}))
    assert _refused(result, f"refuses plain-text SMTP to EMAIL_HOST='{host}'"), result.stderr
    assert "DEMO_MODE=true" in result.stderr  # the message says what would allow the demo's sink


def test_a_relay_on_the_same_machine_may_be_reached_in_clear_text_without_the_switch():
    result = _manage("check", **_production(**{**DEMO_SINK, "EMAIL_HOST": "127.0.0.1"}))
    assert result.returncode == 0, result.stderr
    assert "DEMO_MODE" not in result.stdout + result.stderr


def test_the_demo_switch_allows_its_mail_sink_in_clear_text_and_every_start_names_it():
    env = _production(PAYMENT_PROVIDER_URL="http://provider:8100", DEMO_MODE="true", **DEMO_SINK)
    result = _manage("check", **env)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stdout.splitlines() if "DEMO_MODE=true" in line]
    assert len(warnings) == 1 and '"level": "warning"' in warnings[0], result.stdout
    assert "plain-text SMTP to EMAIL_HOST='mailsink' port 1025 (for the demo stack's own mail sink" in warnings[0]
    assert "Never run a real shop like this" in warnings[0]


def test_the_demo_warning_names_no_mail_allowance_when_mail_goes_over_tls():
    result = _manage("check", **_production(PAYMENT_PROVIDER_URL="http://provider:8100", DEMO_MODE="true"))
    assert result.returncode == 0, result.stderr
    assert "DEMO_MODE=true" in result.stdout and "plain-text SMTP" not in result.stdout


def test_the_demo_switch_never_lets_a_relay_password_travel_in_clear_text():
    env = _production(DEMO_MODE="true", EMAIL_HOST_USER="shop", EMAIL_HOST_PASSWORD="relay-password", **DEMO_SINK)
    result = _manage("check", **env)
    assert _refused(result, "refuses EMAIL_HOST_PASSWORD without EMAIL_USE_TLS"), result.stderr
    assert "refuses plain-text SMTP" not in result.stderr  # the host itself is what the switch allows


@pytest.mark.parametrize("missing", ["EMAIL_FROM", "SHOP_BASE_URL"])
def test_the_demo_switch_still_needs_a_sender_and_an_https_base_url(missing):
    env = _production(DEMO_MODE="true", **DEMO_SINK)
    del env[missing]
    result = _manage("check", **env)
    assert _refused(result, f"needs {missing}"), result.stderr


# --- Behind a proxy (issue 12, item 7) ----------------------------------------------------------------------------


def test_production_needs_the_proxy_hop_count_stated():
    env = _production()
    del env["THROTTLE_TRUSTED_PROXIES"]
    result = _manage("check", **env)
    assert _refused(result, "needs THROTTLE_TRUSTED_PROXIES"), result.stderr


def test_zero_proxies_is_a_valid_explicit_answer():
    result = _manage("check", **_production(THROTTLE_TRUSTED_PROXIES="0"))
    assert result.returncode == 0, result.stderr


def test_the_lockout_counts_the_client_the_throttles_count():
    from django.conf import settings

    from core.throttling import client_ip

    assert settings.AXES_CLIENT_IP_CALLABLE == "core.throttling.client_ip"
    assert import_string(settings.AXES_CLIENT_IP_CALLABLE) is client_ip


@pytest.mark.django_db
def test_schema_is_a_valid_openapi_3_document(api_client):
    response = api_client.get("/api/v1/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    from drf_spectacular.validation import validate_schema

    validate_schema(schema)  # raises on anything that is not valid OpenAPI 3
    for path in ["/api/v1/orders/", "/api/v1/orders/{order_id}/", "/api/v1/products/", "/api/v1/auth/token/"]:
        assert path in schema["paths"]
    assert "24 hours" in schema["info"]["description"]
