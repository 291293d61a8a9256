"""Write prometheusrule.yaml (beside this file) from deploy/observability/alerts.yml: one source for the rules.

python deploy/k8s/components/prometheus-operator/generate.py          (make k8s-rules)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ALERTS = HERE.parents[2] / "observability" / "alerts.yml"
TARGET = HERE / "prometheusrule.yaml"
HEADER = "# Generated from deploy/observability/alerts.yml by generate.py (make k8s-rules). Do not edit.\n"


def prometheus_rule() -> str:
    rules: dict[str, Any] = yaml.safe_load(ALERTS.read_text())
    document = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "hardened-shop", "labels": {"app.kubernetes.io/name": "hardened-shop"}},
        "spec": {"groups": rules["groups"]},
    }
    return HEADER + yaml.safe_dump(document, sort_keys=False, width=120)


if __name__ == "__main__":
    TARGET.write_text(prometheus_rule())
    sys.stdout.write(f"wrote {TARGET}\n")
