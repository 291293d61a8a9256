"""deploy/k8s read as a reviewer would: every overlay rendered by kubectl kustomize, then checked as data.

No cluster runs here, so the manifests are validated on paper: kubernetes-validate --strict (also `make k8s`),
and the rules below, each of which a real cluster would otherwise teach the hard way.
"""

from __future__ import annotations

import base64
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.test import Client

from tests.production import django_check

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ["demo", "production"]
# What the code itself says (config/gunicorn.conf.py, config/settings.py): the manifests must fit these.
GUNICORN_GRACEFUL_TIMEOUT_S = 20
PINNED = re.compile(r"^[\w./-]+(:[\w.-]*\d[\w.-]*)?(@sha256:[0-9a-f]{64})?$")


def _render(overlay: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "deploy/k8s/overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, _render(request.param)


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _pods(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    kinds = {"Deployment", "StatefulSet", "Job"}
    return [
        (f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"])
        for doc in docs
        if doc["kind"] in kinds
    ]


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def _env(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom ConfigMaps, then env with $(VAR) expanded."""
    values: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            values.update(_one(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    for item in container.get("env", []):
        if "value" in item:
            values[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: values.get(m.group(1), m.group(0)), item["value"])
        elif "configMapKeyRef" in item.get("valueFrom", {}):
            ref = item["valueFrom"]["configMapKeyRef"]
            values[item["name"]] = _one(docs, "ConfigMap", ref["name"])["data"][ref["key"]]
        elif "fieldRef" in item.get("valueFrom", {}):
            values[item["name"]] = "10.1.2.3"  # status.podIP, as the kubelet would fill it in
    return values


def test_every_overlay_validates_strictly(overlay, tmp_path):
    name, docs = overlay
    rendered = tmp_path / f"{name}.yaml"
    rendered.write_text(yaml.safe_dump_all(docs))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "kubernetes-validate"), "--strict", "--quiet", "--no-warn", str(rendered)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_image_is_pinned_by_version_or_digest(overlay):
    _, docs = overlay
    for where, pod in _pods(docs):
        for container in _containers(pod):
            image = container["image"]
            assert PINNED.match(image) and ":" in image.rsplit("/", 1)[-1], f"{where}: {image} is not pinned"
            assert not image.endswith(":latest"), f"{where}: {image}"


def test_every_pod_runs_unprivileged_on_a_read_only_root(overlay):
    _, docs = overlay
    for where, pod in _pods(docs):
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod.get("automountServiceAccountToken") is False, where
        for container in _containers(pod):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, (where, container["name"])
            assert context["allowPrivilegeEscalation"] is False, (where, container["name"])
            assert context["capabilities"]["drop"] == ["ALL"], (where, container["name"])
            assert {"requests", "limits"} <= set(container["resources"]), (where, container["name"])


def test_app_pods_mount_tmp_and_the_metrics_dir(overlay):
    _, docs = overlay
    for name in ("web", "worker"):
        pod = _one(docs, "Deployment", name)["spec"]["template"]["spec"]
        mounts = {mount["mountPath"]: mount["name"] for mount in pod["containers"][0]["volumeMounts"]}
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        # The image's PROMETHEUS_MULTIPROC_DIR (deploy/Dockerfile) is /tmp/prometheus.
        assert {"/tmp", "/tmp/prometheus"} <= set(mounts), name
        assert all("emptyDir" in volumes[mounts[path]] for path in ("/tmp", "/tmp/prometheus")), name


def test_web_probes_pass_behind_the_ssl_redirect_and_allowed_hosts(overlay, settings_production_like):
    _, docs = overlay
    pod = _one(docs, "Deployment", "web")["spec"]["template"]["spec"]
    web = pod["containers"][0]
    allowed_hosts = _env(docs, web)["ALLOWED_HOSTS"].split(",")
    probes = {kind: web[kind]["httpGet"] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probes["readinessProbe"]["path"] == "/readyz/serving"  # the database only, never the cache or broker
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["startupProbe"]["path"] == "/healthz"
    for kind, probe in probes.items():
        headers = {header["name"]: header["value"] for header in probe["httpHeaders"]}
        assert headers["X-Forwarded-Proto"] == "https", kind
        assert headers["Host"] in allowed_hosts, kind
        # The same request, made to Django in production's security settings, is answered 200, not 301 or 400.
        settings_production_like(ALLOWED_HOSTS=allowed_hosts)
        response = Client().get(probe["path"], headers={"host": headers["Host"], "x-forwarded-proto": "https"})
        assert response.status_code == 200, (kind, response.status_code)
        bare = Client().get(probe["path"], headers={"host": headers["Host"]})
        assert bare.status_code == 301, "without X-Forwarded-Proto the probe would only see the SSL redirect"


def test_grace_periods_outlast_the_work_in_flight(overlay):
    _, docs = overlay
    web = _one(docs, "Deployment", "web")["spec"]["template"]["spec"]
    pre_stop = web["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert web["terminationGracePeriodSeconds"] > int(pre_stop[1]) + GUNICORN_GRACEFUL_TIMEOUT_S
    worker = _one(docs, "Deployment", "worker")["spec"]["template"]["spec"]
    assert worker["terminationGracePeriodSeconds"] >= settings.CELERY_TASK_TIME_LIMIT
    assert any(port["name"] == "metrics" for port in worker["containers"][0]["ports"])
    assert _env(docs, worker["containers"][0])["CELERY_METRICS_PORT"] == "9808"


def test_exactly_one_beat_and_it_never_overlaps_itself(overlay):
    _, docs = overlay
    beat = _one(docs, "Deployment", "beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    scaled = {doc["spec"]["scaleTargetRef"]["name"] for doc in docs if doc["kind"] == "HorizontalPodAutoscaler"}
    assert scaled == {"web", "worker"}


def test_hpa_max_replicas_fit_the_connection_budget(overlay):
    """web pods x threads + worker processes <= PgBouncer's pool; PgBouncer's server connections <= PostgreSQL's."""
    name, docs = overlay
    hpa = {doc["metadata"]["name"]: doc["spec"] for doc in docs if doc["kind"] == "HorizontalPodAutoscaler"}
    web_env = _env(docs, _one(docs, "Deployment", "web")["spec"]["template"]["spec"]["containers"][0])
    worker_env = _env(docs, _one(docs, "Deployment", "worker")["spec"]["template"]["spec"]["containers"][0])
    pgbouncer = _one(docs, "Deployment", "pgbouncer")
    pool = _one(docs, "ConfigMap", "pgbouncer-config")["data"]

    threads_per_web_pod = int(web_env["GUNICORN_WORKERS"]) * int(web_env["GUNICORN_THREADS"])
    clients = hpa["web"]["maxReplicas"] * threads_per_web_pod + hpa["worker"]["maxReplicas"] * int(
        worker_env["CELERY_WORKER_CONCURRENCY"]
    )
    pooled = pgbouncer["spec"]["replicas"] * int(pool["PGBOUNCER_POOL_SIZE"])
    assert clients <= pooled, f"{name}: {clients} clients can hold a transaction at once, the pool has {pooled}"

    annotations = pgbouncer["metadata"]["annotations"]
    max_connections = int(annotations["hardened-shop.example/postgres-max-connections"])
    reserved = int(annotations["hardened-shop.example/postgres-reserved-connections"])
    server = pgbouncer["spec"]["replicas"] * int(pool["PGBOUNCER_MAX_DB_CONNECTIONS"])
    assert int(pool["PGBOUNCER_POOL_SIZE"]) + int(pool["PGBOUNCER_RESERVE_POOL_SIZE"]) <= int(
        pool["PGBOUNCER_MAX_DB_CONNECTIONS"]
    )
    assert server <= max_connections - reserved, f"{name}: PgBouncer may open {server} of {max_connections - reserved}"
    postgres = [doc for doc in docs if doc["kind"] == "StatefulSet" and doc["metadata"]["name"] == "postgres"]
    if postgres:  # the demo runs its own PostgreSQL: the annotation must say what it is started with
        args = postgres[0]["spec"]["template"]["spec"]["containers"][0]["args"]
        assert f"max_connections={max_connections}" in args


def test_the_budget_can_fail(overlay):
    """The arithmetic above refuses one web pod more than the budget allows (so the test is able to fail)."""
    _, docs = overlay
    hpa = {doc["metadata"]["name"]: doc["spec"] for doc in docs if doc["kind"] == "HorizontalPodAutoscaler"}
    pool = _one(docs, "ConfigMap", "pgbouncer-config")["data"]
    replicas = _one(docs, "Deployment", "pgbouncer")["spec"]["replicas"]
    too_many = hpa["web"]["maxReplicas"] + (replicas * int(pool["PGBOUNCER_POOL_SIZE"])) // 12 + 1
    assert too_many * 12 + hpa["worker"]["maxReplicas"] * 2 > replicas * int(pool["PGBOUNCER_POOL_SIZE"])


def test_disruption_budgets_network_policies_and_the_migration_job(overlay):
    _, docs = overlay
    for name in ("web", "worker", "pgbouncer"):
        _one(docs, "PodDisruptionBudget", name)
    deny = _one(docs, "NetworkPolicy", "default-deny")["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    migrate = _one(docs, "Job", "migrate")["spec"]["template"]["spec"]["containers"][0]
    assert 'DATABASE_URL="$DIRECT_DATABASE_URL"' in migrate["command"][-1]  # straight to PostgreSQL
    ingress = _one(docs, "Ingress", "web")["spec"]
    assert ingress["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "web"
    assert _env(docs, {"envFrom": [{"configMapRef": {"name": "shop-config"}}]})["THROTTLE_TRUSTED_PROXIES"] == "1"


def test_demo_and_production_differ_only_where_they_must():
    demo, production = _render("demo"), _render("production")
    demo_config = _one(demo, "ConfigMap", "shop-config")["data"]
    production_config = _one(production, "ConfigMap", "shop-config")["data"]
    assert demo_config["DEMO_MODE"] == "true" and production_config["DEMO_MODE"] == "false"
    assert production_config["PAYMENT_PROVIDER_URL"].startswith("https://")
    production_kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in production}
    assert ("Deployment", "provider") not in production_kinds and ("Job", "seed") not in production_kinds
    assert not [doc for doc in production if doc["kind"] == "Secret"], "production secrets are never committed"
    assert ("ServiceMonitor", "shop-worker") in production_kinds and (
        "PrometheusRule",
        "hardened-shop",
    ) in production_kinds


def test_the_prometheus_rule_is_generated_from_the_alerts_file():
    sys.path.insert(0, str(ROOT / "deploy/k8s/components/prometheus-operator"))
    try:
        import generate  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    committed = (ROOT / "deploy/k8s/components/prometheus-operator/prometheusrule.yaml").read_text()
    assert committed == generate.prometheus_rule(), (
        "run `make k8s-rules` after changing deploy/observability/alerts.yml"
    )


def test_the_demo_database_role_has_the_timeouts_of_init_sh():
    init_sh = (ROOT / "deploy/postgres/init.sh").read_text()
    demo = (ROOT / "deploy/k8s/overlays/demo/postgres.yaml").read_text()
    for setting, variable in [
        ("statement_timeout", "PG_STATEMENT_TIMEOUT"),
        ("lock_timeout", "PG_LOCK_TIMEOUT"),
        ("idle_in_transaction_session_timeout", "PG_IDLE_IN_TRANSACTION_TIMEOUT"),
    ]:
        default = re.search(rf"\$\{{{variable}:-([^}}]+)\}}", init_sh)
        assert default, variable
        assert f"SET {setting} = '{default.group(1)}'" in demo, setting


# --- Mail: the SMTP settings every Django process starts with, who may reach a relay, the demo's sink -------------

MAIL_KEYS = ("EMAIL_HOST", "EMAIL_PORT", "EMAIL_USE_TLS", "EMAIL_USE_SSL", "EMAIL_FROM", "SHOP_BASE_URL")
SMTP_PORTS = {25, 465, 587}


def _django_containers(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every container that loads the shop's settings, and so meets production's refusals when it starts."""
    for where, pod in _pods(docs):
        for container in _containers(pod):
            if {"configMapRef": {"name": "shop-config"}} in container.get("envFrom", []):
                yield f"{where}/{container['name']}", container


def _secret_env(docs: list[dict[str, Any]]) -> dict[str, str]:
    """shop-secrets as the demo commits it, or as README "Deploy" tells a deployer to create it (production)."""
    committed = [doc for doc in docs if doc["kind"] == "Secret" and doc["metadata"]["name"] == "shop-secrets"]
    if committed:
        return {key: base64.b64decode(value).decode() for key, value in committed[0].get("data", {}).items()}
    return {
        "SECRET_KEY": secrets.token_urlsafe(60),
        "DATABASE_URL": "postgres://shop:x@pgbouncer:6432/shop",
        "DIRECT_DATABASE_URL": "postgres://shop:x@shop-db.example.internal:5432/shop?sslmode=require",
        "METRICS_TOKEN": secrets.token_hex(16),
        "EMAIL_HOST_USER": "shop",
        "EMAIL_HOST_PASSWORD": secrets.token_hex(16),
    }


def test_every_django_process_starts_with_the_rendered_mail_settings(overlay):
    name, docs = overlay
    containers = dict(_django_containers(docs))
    assert {"Deployment/web/web", "Deployment/worker/worker", "Deployment/beat/beat", "Job/migrate/migrate"} <= set(
        containers
    )
    web = _env(docs, containers["Deployment/web/web"])
    for where, container in containers.items():
        env = _env(docs, container)
        assert {key: env.get(key) for key in MAIL_KEYS} == {key: web[key] for key in MAIL_KEYS}, where
    assert web["SHOP_BASE_URL"].startswith("https://")
    result = django_check({**web, **_secret_env(docs)})
    assert result.returncode == 0, result.stderr[-2000:]
    if name == "demo":
        assert web["DEMO_MODE"] == "true" and web["EMAIL_HOST"] == "mailsink"
        assert "plain-text SMTP to EMAIL_HOST='mailsink' port 1025" in result.stdout  # named at every start
    else:
        assert web["DEMO_MODE"] == "false" and web["EMAIL_USE_TLS"] == "true"
        assert "DEMO_MODE" not in result.stdout + result.stderr


def test_production_with_the_demos_mail_settings_is_refused():
    """The twin of the demo's start: its sink in clear text, with DEMO_MODE=false, does not start."""
    demo, production = _render("demo"), _render("production")
    demo_mail = {key: _env(demo, {"envFrom": [{"configMapRef": {"name": "shop-config"}}]})[key] for key in MAIL_KEYS}
    web = _env(production, _one(production, "Deployment", "web")["spec"]["template"]["spec"]["containers"][0])
    secret = {key: value for key, value in _secret_env(production).items() if not key.startswith("EMAIL_HOST_")}
    result = django_check({**web, **secret, **demo_mail})
    assert result.returncode != 0
    assert "refuses plain-text SMTP to EMAIL_HOST='mailsink'" in result.stderr


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value, operator = labels.get(expression["key"]), expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and value is None:
            return False
        if operator == "DoesNotExist" and value is not None:
            return False
    return True


def _egress_rules(docs: list[dict[str, Any]], labels: dict[str, str]) -> list[dict[str, Any]]:
    """The egress rules that apply to a pod with these labels (NetworkPolicies add up)."""
    return [
        rule
        for doc in docs
        if doc["kind"] == "NetworkPolicy"
        and "Egress" in doc["spec"]["policyTypes"]
        and _selects(doc["spec"]["podSelector"], labels)
        for rule in doc["spec"].get("egress", [])
    ]


def _allows(rule: dict[str, Any], port: int) -> bool:
    return "ports" not in rule or any(item.get("port") == port for item in rule["ports"])


def _pod_labels(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    kinds = {"Deployment", "StatefulSet", "Job"}
    return {
        f"{doc['kind']}/{doc['metadata']['name']}": doc["spec"]["template"]["metadata"]["labels"]
        for doc in docs
        if doc["kind"] in kinds
    }


def test_only_the_worker_may_reach_an_smtp_relay(overlay):
    """The worker delivers the outbox (mail/services.py); web only writes rows. Port 25 is closed to every pod."""
    _, docs = overlay
    reach = {
        where: {port for port in SMTP_PORTS if any(_allows(rule, port) for rule in _egress_rules(docs, labels))}
        for where, labels in _pod_labels(docs).items()
    }
    assert reach.pop("Deployment/worker") == {465, 587}
    assert not {where: ports for where, ports in reach.items() if ports}, "only the worker may speak SMTP"
    # The rule that opens 587/465 goes outside the cluster only: no pod selector, no private range.
    worker = _pod_labels(docs)["Deployment/worker"]
    for rule in _egress_rules(docs, worker):
        if _allows(rule, 587):
            assert [peer["ipBlock"]["cidr"] for peer in rule["to"]] == ["0.0.0.0/0"]
            assert "10.0.0.0/8" in rule["to"][0]["ipBlock"]["except"]


def test_the_demo_sink_exists_only_in_the_demo_and_only_the_worker_reaches_it(overlay):
    name, docs = overlay
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in docs}
    if name == "production":
        assert not [kind for kind in kinds if kind[1] == "mailsink"]
        return
    sink = _one(docs, "Deployment", "mailsink")["spec"]["template"]["spec"]
    container = sink["containers"][0]
    assert container["command"][:3] == ["python", "-m", "mail.sink"]
    directory = container["command"][container["command"].index("--directory") + 1]
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in sink["volumes"]}
    assert volumes[mounts[directory]]["persistentVolumeClaim"]["claimName"] == "mailsink"  # its .eml files kept
    assert ("PersistentVolumeClaim", "mailsink") in kinds
    assert "envFrom" not in container and "env" not in container  # none of the shop's settings or secrets
    service = _one(docs, "Service", "mailsink")["spec"]
    assert service.get("type", "ClusterIP") == "ClusterIP"  # never exposed outside the cluster
    backends = [
        path["backend"]["service"]["name"]
        for doc in docs
        if doc["kind"] == "Ingress"
        for rule in doc["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert "mailsink" not in backends
    # Ingress: only the worker, on the sink's port; egress: the worker reaches it.
    labels = _pod_labels(docs)
    policies = [
        doc["spec"]
        for doc in docs
        if doc["kind"] == "NetworkPolicy"
        and "Ingress" in doc["spec"]["policyTypes"]
        and _selects(doc["spec"]["podSelector"], labels["Deployment/mailsink"])
    ]
    peers = [
        (peer, rule["ports"]) for policy in policies for rule in policy.get("ingress", []) for peer in rule["from"]
    ]
    assert peers, "default deny leaves the sink unreachable"
    for peer, ports in peers:
        admitted = {where for where, pod_labels in labels.items() if _selects(peer["podSelector"], pod_labels)}
        assert admitted == {"Deployment/worker"} and ports == [{"protocol": "TCP", "port": 1025}]
    assert any(
        _allows(rule, 1025) and _selects(peer["podSelector"], labels["Deployment/mailsink"])
        for rule in _egress_rules(docs, labels["Deployment/worker"])
        for peer in rule.get("to", [])
        if "podSelector" in peer
    )
