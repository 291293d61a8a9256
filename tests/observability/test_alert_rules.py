"""The alert rules' unit tests (deploy/observability/tests/alerts_test.yml), run by Prometheus's own promtool.

The twin runs the same unit tests against a copy of the rules with two thresholds loosened, to show the unit
tests notice when an alert stops firing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

OBSERVABILITY = Path(__file__).resolve().parents[2] / "deploy" / "observability"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(binary).exists():
        pytest.fail("promtool is not installed: run `deploy/scripts/stack.sh packages prometheus`")
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False, timeout=120)


def test_alert_rules_are_valid_and_their_unit_tests_pass() -> None:
    checked = promtool("check", "rules", str(OBSERVABILITY / "alerts.yml"))
    tested = promtool("test", "rules", str(OBSERVABILITY / "tests" / "alerts_test.yml"))

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert tested.returncode == 0, tested.stdout + tested.stderr
    config = promtool("check", "config", "--syntax-only", str(OBSERVABILITY / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr


def test_the_unit_tests_catch_an_alert_that_no_longer_fires(tmp_path: Path) -> None:
    rules = (OBSERVABILITY / "alerts.yml").read_text()
    loosened = (
        rules.replace("shop:http_5xx:ratio_rate5m > 0.02", "shop:http_5xx:ratio_rate5m > 0.5")
        .replace(
            "max by (invariant) (shop_invariant_violations) > 0", "max by (invariant) (shop_invariant_violations) > 5"
        )
        .replace("max(shop_mail_oldest_pending_age_seconds) > 900", "max(shop_mail_oldest_pending_age_seconds) > 90000")
    )
    assert loosened != rules
    (tmp_path / "alerts.yml").write_text(loosened)
    (tmp_path / "tests").mkdir()
    shutil.copy(OBSERVABILITY / "tests" / "alerts_test.yml", tmp_path / "tests" / "alerts_test.yml")

    tested = promtool("test", "rules", str(tmp_path / "tests" / "alerts_test.yml"))

    assert tested.returncode != 0
    assert "ShopHigh5xxRatio" in tested.stdout + tested.stderr
    assert "ShopInvariantViolated" in tested.stdout + tested.stderr
    assert "ShopMailOutboxStuck" in tested.stdout + tested.stderr
