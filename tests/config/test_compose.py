"""docker-compose.yml checked as data (`make compose-smoke` runs it for real), and the init script the postgres
container runs is run against the local server, exactly as the image's entrypoint would."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from tests.production import django_check

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


APP_SERVICES = ("migrate", "web", "worker", "beat", "provider", "seed", "mailsink")
DEMO_ONLY = {"provider", "seed", "mailsink"}
MAIL_DIR = "/var/spool/shop-mail"  # the sink's directory in the image (deploy/Dockerfile) and its volume


def test_the_app_reaches_postgres_only_through_pgbouncer(compose):
    services = compose["services"]
    for name in ("web", "worker", "beat"):
        url = services[name]["environment"]["DATABASE_URL"]
        assert "@pgbouncer:6432/" in url, f"{name} must go through PgBouncer, not {url}"
    assert "DIRECT_DATABASE_URL" in services["migrate"]["command"][-1]  # DDL goes straight to PostgreSQL
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}


def test_every_process_waits_for_what_it_needs(compose):
    services = compose["services"]
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["pgbouncer"]["condition"] == "service_healthy"
    for name in ("postgres", "pgbouncer", "redis", "web", "worker", "proxy", "mailsink"):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"


def test_pgbouncer_runs_the_settings_of_deploy_pgbouncer(compose):
    """One source of truth: the image is built from deploy/pgbouncer, and compose sets no pool setting itself."""
    pgbouncer = compose["services"]["pgbouncer"]
    assert pgbouncer["build"]["context"] == "deploy/pgbouncer"
    assert not [key for key in pgbouncer["environment"] if key.startswith("PGBOUNCER_") and "AUTH" not in key]
    dockerfile = (ROOT / "deploy/pgbouncer/Dockerfile").read_text()
    assert "COPY pgbouncer.ini.template render.sh entrypoint.sh" in dockerfile


def test_the_container_renders_the_same_pgbouncer_settings_as_the_local_stack(tmp_path):
    def render(**env: str) -> dict[str, str]:
        result = subprocess.run(
            ["sh", str(ROOT / "deploy/pgbouncer/render.sh")],
            env={"PATH": os.environ["PATH"], **env},
            capture_output=True,
            text=True,
            check=True,
        )
        pairs = [line.split("=", 1) for line in result.stdout.splitlines() if "=" in line and not line.startswith(";")]
        return {key.strip(): value.strip() for key, value in pairs}

    local = render(PGBOUNCER_AUTH_FILE=str(tmp_path / "userlist.txt"), PGBOUNCER_LOGFILE="/x/pgbouncer.log")
    # What deploy/pgbouncer/entrypoint.sh passes in a container:
    container = render(
        PG_HOST="postgres",
        PGBOUNCER_HOST="0.0.0.0",
        PGBOUNCER_AUTH_TYPE="scram-sha-256",
        PGBOUNCER_AUTH_FILE="/tmp/pgbouncer/userlist.txt",
    )
    where_it_runs = {"*", "listen_addr", "logfile", "auth_type", "auth_file"}
    differing = {key for key in local.keys() | container.keys() if local.get(key) != container.get(key)}
    assert differing <= where_it_runs, differing
    for key, value in {
        "pool_mode": "transaction",
        "query_wait_timeout": "5",
        "server_connect_timeout": "3",
        "idle_transaction_timeout": "30",
        "max_db_connections": "25",
        "default_pool_size": "20",
    }.items():
        assert container[key] == value, key


def test_every_image_is_pinned(compose):
    for name, service in compose["services"].items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: {image}"
        if "build" in service:
            for arg, value in service["build"].get("args", {}).items():
                if arg.endswith("_IMAGE"):
                    assert ":" in value and not value.endswith(":latest"), f"{name}: {arg}={value}"


def test_only_the_proxy_and_the_dashboards_publish_ports_and_only_on_loopback(compose):
    published = {name for name, service in compose["services"].items() if service.get("ports")}
    assert published == {"proxy", "prometheus", "grafana"}
    for name in published:
        for port in compose["services"][name]["ports"]:
            assert port.startswith("127.0.0.1:"), f"{name}: {port}"


def test_the_simulator_and_the_demo_data_exist_only_in_the_demo_profile(compose):
    services = compose["services"]
    for name in DEMO_ONLY:
        assert services[name]["profiles"] == ["demo"], name
    assert "ports" not in services["provider"] and "ports" not in services["mailsink"]  # never published
    assert "PAYMENT_SIMULATOR_CONTROL_TOKEN" in services["provider"]["environment"]
    for name in set(services) - DEMO_ONLY - {"grafana"}:
        assert "profiles" not in services[name], name
    assert services["seed"]["command"] == ["python", "manage.py", "seed_demo"]
    # The demo switch comes from the environment, never defaulted on.
    assert services["web"]["environment"]["DEMO_MODE"] == "${DEMO_MODE:-false}"


def test_the_app_runs_in_production_mode_read_only_behind_one_proxy_hop(compose):
    services = compose["services"]
    for name in APP_SERVICES:
        assert services[name]["read_only"] is True, name
        assert any(mount.startswith("/tmp:") for mount in services[name]["tmpfs"]), name
    for name in ("web", "worker", "beat", "migrate", "seed"):
        environment = services[name]["environment"]
        assert environment["DJANGO_ENV"] == "production", name
        assert environment["THROTTLE_TRUSTED_PROXIES"] == "1", name
    caddyfile = (ROOT / "deploy/compose/Caddyfile").read_text()
    directives = [line.strip() for line in caddyfile.splitlines() if not line.strip().startswith("#")]
    # One hop: one reverse_proxy, and no trusted_proxies (Caddy then replaces what the client sent).
    assert sum(line.startswith("reverse_proxy ") for line in directives) == 1
    assert not [line for line in directives if line.startswith("trusted_proxies")]


def test_healthchecks_pass_behind_the_ssl_redirect(compose):
    web = " ".join(compose["services"]["web"]["healthcheck"]["test"])
    assert "/readyz/serving" in web
    assert "'X-Forwarded-Proto': 'https'" in web and "'Host': 'web'" in web
    assert "web" in compose["services"]["web"]["environment"]["ALLOWED_HOSTS"].split(",")


def test_exactly_one_beat(compose):
    beat = compose["services"]["beat"]
    assert "celery" in beat["command"] and "beat" in beat["command"]
    assert beat.get("deploy", {}).get("replicas", 1) == 1
    assert sum("beat" in service.get("command", []) for service in compose["services"].values()) == 1


def test_prometheus_scrapes_the_web_and_the_worker_port(compose):
    config = yaml.safe_load((ROOT / "deploy/compose/prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets == {"shop": ["web:8000"], "shop-worker": ["worker:9808"]}
    assert compose["services"]["worker"]["environment"]["CELERY_METRICS_PORT"] == "9808"


def test_the_image_is_built_for_production():
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    assert dockerfile.count("FROM ${PYTHON_IMAGE}") == 2  # multi-stage: builder and runtime
    assert "ARG PYTHON_IMAGE=python:3.11." in dockerfile and "ARG UV_VERSION=0." in dockerfile
    assert "RUN DJANGO_ENV=production" in dockerfile and "collectstatic" in dockerfile
    assert "USER 10001:10001" in dockerfile and "GUNICORN_BIND=0.0.0.0:8000" in dockerfile
    assert "org.opencontainers.image.version" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env", ".tools", ".run"} <= set(ignored)


def test_the_example_env_file_names_every_required_secret():
    example = (ROOT / ".env.example").read_text()
    compose_text = (ROOT / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", compose_text))
    assert required == {
        "SECRET_KEY",
        "SHOP_DB_PASSWORD",
        "METRICS_TOKEN",
        "POSTGRES_PASSWORD",
        "EMAIL_FROM",
        "SHOP_BASE_URL",
    }
    for variable in required:
        assert re.search(rf"^{variable}=", example, re.MULTILINE), variable
    assert ".env" in (ROOT / ".gitignore").read_text().split()


# --- Mail: the relay of a real shop, the demo's own sink ---------------------------------------------------------


def test_the_demo_sink_runs_the_shops_own_sink_and_keeps_its_mail_on_a_volume(compose):
    sink = compose["services"]["mailsink"]
    command = sink["command"]
    assert command[:3] == ["python", "-m", "mail.sink"]
    assert command[command.index("--directory") + 1] == MAIL_DIR
    assert command[command.index("--port") + 1] == "1025"
    assert f"mail_data:{MAIL_DIR}" in sink["volumes"] and "mail_data" in compose["volumes"]
    # The sink needs none of the shop's secrets: it gets no environment of the app's.
    assert "environment" not in sink
    # The volume takes the image directory's owner when created: the non-root user must own it.
    assert f"install -d -o 10001 -g 10001 -m 0750 {MAIL_DIR}" in (ROOT / "deploy/Dockerfile").read_text()
    # The sink runs from the app image's runtime dependencies (uv sync --no-dev), not the dev group.
    pyproject = (ROOT / "pyproject.toml").read_text()
    runtime = pyproject[pyproject.index("dependencies = [") : pyproject.index("[dependency-groups]")]
    assert '"aiosmtpd' in runtime


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.group(1), match.group(2) or "", match.group(3) or ""
        current = env.get(name)
        if operator == ":-":
            return current if current else argument
        if operator == "-":
            return current if current is not None else argument
        if operator == ":?":
            if not current:
                raise LookupError(f"{name}: {argument}")
            return current
        return current or ""

    return re.sub(r"\$\$|\$\{(\w+)(?:(:-|-|:\?)([^}]*))?\}", substitute, value)


def _dotenv(text: str) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in text.splitlines() if "=" in line and not line.lstrip().startswith("#")]
    return {key.strip(): value.strip() for key, value in pairs}


def _example_env(**changes: str) -> dict[str, str]:
    """.env.example as a deployer fills it in: the empty required values set, then `changes`."""
    env = _dotenv((ROOT / ".env.example").read_text())
    for secret in ("SECRET_KEY", "POSTGRES_PASSWORD", "SHOP_DB_PASSWORD", "METRICS_TOKEN"):
        env[secret] = secrets.token_hex(32)
    env["EMAIL_FROM"] = "Hardened Shop <orders@shop.example.com>"
    return {**env, **changes}


def _start(compose: dict[str, Any], service: str, env_file: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`manage.py check` with exactly the environment compose gives `service` (nothing of this shell's)."""
    environment = {
        key: _interpolate(str(value), env_file) for key, value in compose["services"][service]["environment"].items()
    }
    return django_check(environment)


@pytest.mark.parametrize("service", ["web", "worker"])
def test_the_demo_from_the_example_env_file_starts_with_its_sink(compose, service):
    """README: cp .env.example .env, fill in the secrets and EMAIL_FROM, DEMO_MODE=true ... --profile demo up."""
    result = _start(compose, service, _example_env(DEMO_MODE="true"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "plain-text SMTP to EMAIL_HOST='mailsink' port 1025" in result.stdout  # named in the demo warning


def test_a_real_shop_that_sets_no_relay_is_refused_by_name(compose):
    result = _start(compose, "web", _example_env(PAYMENT_PROVIDER_URL="https://api.payments.example"))
    assert result.returncode != 0
    assert "refuses plain-text SMTP to EMAIL_HOST='mailsink'" in result.stderr


def test_a_real_shop_with_its_relay_starts_and_says_nothing_of_a_demo(compose):
    relay = {
        "EMAIL_HOST": "smtp.relay.example",
        "EMAIL_PORT": "587",
        "EMAIL_USE_TLS": "true",
        "EMAIL_HOST_USER": "shop",
        "EMAIL_HOST_PASSWORD": secrets.token_hex(16),
        "PAYMENT_PROVIDER_URL": "https://api.payments.example",
    }
    result = _start(compose, "worker", _example_env(**relay))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "DEMO_MODE" not in result.stdout + result.stderr


def test_compose_itself_stops_without_a_sender(compose):
    env = _example_env(DEMO_MODE="true")
    env["EMAIL_FROM"] = ""
    with pytest.raises(LookupError, match="EMAIL_FROM"):
        _start(compose, "web", env)


def test_the_image_build_collects_static_files_with_a_configuration_production_accepts():
    """The builder runs collectstatic in production mode: it needs every variable production requires."""
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    run = dockerfile[dockerfile.index("RUN DJANGO_ENV=production") : dockerfile.index("manage.py collectstatic")]
    build_env = dict(re.findall(r"(\w+)=(\S+)", run))
    result = django_check(build_env)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_postgres_init_script_creates_the_role_with_its_timeouts():
    role = f"compose_{uuid.uuid4().hex[:8]}"
    script = (ROOT / "deploy/postgres/init.sh").read_text()
    # The container mounts deploy/postgres at /deploy/postgres and connects over its socket; here: TCP.
    script = script.replace("/deploy/postgres/", f"{ROOT}/deploy/postgres/")
    script = script.replace('--username "$POSTGRES_USER"', '-h 127.0.0.1 --username "$POSTGRES_USER"')
    env = {**os.environ, "POSTGRES_USER": "postgres", "APP_DB_USER": role, "APP_DB_NAME": role, "APP_DB_PASSWORD": "x"}
    result = subprocess.run(["sh"], input=script, env=env, capture_output=True, text=True, timeout=60, check=False)
    try:
        assert result.returncode == 0, result.stderr
        with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres") as conn:
            row = conn.execute("SELECT rolconfig FROM pg_roles WHERE rolname = %s", [role]).fetchone()
        assert row is not None
        assert {"statement_timeout=5s", "lock_timeout=3s", "idle_in_transaction_session_timeout=30s"} <= set(row[0])
    finally:
        with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{role}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')
