"""The workshop is never installed in production: production settings refuse it, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.production import production_environment

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DJANGO_ENV", "SECRET_KEY", "DEBUG", "WORKSHOP_ENABLED"}}
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


PRODUCTION = production_environment()
PROBE = (
    "from django.conf import settings; from config.urls import urlpatterns; "
    "print('workshop' in settings.INSTALLED_APPS, any('workshop' in str(p.pattern) for p in urlpatterns))"
)


def last_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def test_production_refuses_to_start_with_the_workshop_enabled_and_names_the_variable() -> None:
    result = _python(PROBE, **PRODUCTION, WORKSHOP_ENABLED="true")
    assert result.returncode != 0
    assert "WORKSHOP_ENABLED" in result.stderr
    assert "refuses" in result.stderr


def test_production_without_the_variable_has_no_workshop_app_and_no_route() -> None:
    # The twin of the refusal: the same production settings start, and the app is simply not there.
    result = _python(PROBE, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert last_line(result) == "False False"  # not installed, not mounted


def test_development_installs_and_mounts_it_only_when_asked() -> None:
    off = _python(PROBE, DJANGO_ENV="development")
    on = _python(PROBE, DJANGO_ENV="development", WORKSHOP_ENABLED="true")
    assert (last_line(off), last_line(on)) == ("False False", "True True"), off.stderr + on.stderr
