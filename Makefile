# Hardened Shop. `make run` serves the shop; `make test` proves it. Both set up what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
UV := .tools/bin/uv
STACK := deploy/scripts/stack.sh
RUN_DIR ?= $(CURDIR)/.run

export DATABASE_URL ?= postgres://shop@127.0.0.1:6432/shop
export DIRECT_DATABASE_URL ?= postgres://shop@127.0.0.1:5432/shop
export REDIS_URL ?= redis://127.0.0.1:6379/0
export PAYMENT_PROVIDER_URL ?= http://127.0.0.1:8100
export RUN_DIR

.PHONY: help install services migrate seed run test lint typecheck pytest fuzz format clean alert-rules k8s k8s-rules compose-smoke loadtest loadtest-stress bench bench-scale workshop workshop-run workshop-check

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(UV):
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --quiet
	@touch $@

install: $(VENV)/.synced ## create .venv with the locked dependencies (uv.lock)

services: install ## PgBouncer + PostgreSQL + Redis up, the app's role and database in place
	@$(STACK) packages
	@$(STACK) services
	@$(STACK) pgbouncer-start

migrate: services ## apply migrations directly on PostgreSQL (not through PgBouncer)
	DATABASE_URL=$(DIRECT_DATABASE_URL) $(PY) manage.py migrate --noinput

seed: migrate ## demo data (idempotent)
	$(PY) manage.py seed_demo

run: seed ## serve the shop on http://127.0.0.1:8000 with a Celery worker, beat, the payment provider and a mail sink
	@mkdir -p $(RUN_DIR)
	$(PY) manage.py collectstatic --noinput --verbosity 0
	@echo "Hardened Shop on http://127.0.0.1:8000  (demo logins: alice / bob / charlie, password demo-password-123)"
	@echo "Mail the shop sends: .run/mail/*.eml, listed at http://127.0.0.1:8000/dev/mail/"
	@# Metrics across processes: web workers and Celery children count into one emptied directory.
	@rm -rf $(RUN_DIR)/prometheus && mkdir -p $(RUN_DIR)/prometheus
	@# Logs: one JSON object per line, as in production (LOG_FORMAT=console make run for readable lines).
	LOG_FORMAT=$${LOG_FORMAT:-json} PROMETHEUS_MULTIPROC_DIR=$(RUN_DIR)/prometheus \
		exec $(VENV)/bin/honcho start -f Procfile

lint: install ## ruff, and the import contracts in pyproject.toml (lint-imports)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: install ## mypy with django-stubs
	$(VENV)/bin/mypy .

pytest: services ## the pytest suite against PostgreSQL through PgBouncer, Redis, Celery
	@$(STACK) packages chromium prometheus
	$(VENV)/bin/pytest $(PYTEST_ARGS)

fuzz: services ## the outside checks at full strength: schemathesis 200+ examples/operation + stateful, crawl, lifecycle
	@# The same tests as in `make test`, with the bigger numbers of tests/fuzz/levels.py (SHOP_FUZZ_LEVEL=fuzz);
	@# tests/lifecycle is the order/payment state machine (it reads the same variable).
	SHOP_FUZZ_LEVEL=fuzz $(VENV)/bin/pytest tests/fuzz $(wildcard tests/lifecycle) $(PYTEST_ARGS)

alert-rules: ## promtool: check the Prometheus config and unit-test the alert rules (deploy/observability/)
	@$(STACK) packages prometheus
	promtool check config --syntax-only deploy/observability/prometheus.yml
	promtool check rules deploy/observability/alerts.yml
	promtool test rules deploy/observability/tests/alerts_test.yml

# --- Deploy (README "Deploy") -------------------------------------------------------------------------------
K8S_OVERLAYS := demo production

k8s: install ## render every deploy/k8s overlay (kubectl kustomize) and validate it (kubernetes-validate --strict)
	@command -v kubectl >/dev/null 2>&1 || { [ "$$(id -u)" -eq 0 ] && echo "installing Debian's kubectl (kubernetes-client)" \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null; } \
		|| { echo "make k8s needs kubectl: sudo apt-get install -y kubernetes-client"; exit 1; }
	@mkdir -p $(RUN_DIR)/k8s
	@for overlay in $(K8S_OVERLAYS); do \
		kubectl kustomize deploy/k8s/overlays/$$overlay > $(RUN_DIR)/k8s/$$overlay.yaml \
			|| { echo "kubectl kustomize deploy/k8s/overlays/$$overlay failed (its kustomize must be v4 or newer)"; exit 1; }; \
		$(VENV)/bin/kubernetes-validate --strict --quiet --no-warn $(RUN_DIR)/k8s/$$overlay.yaml || exit 1; \
		echo "deploy/k8s/overlays/$$overlay: $$(grep -c '^kind:' $(RUN_DIR)/k8s/$$overlay.yaml) resources, valid (--strict; CRDs unchecked)"; \
	done

k8s-rules: install ## regenerate the PrometheusRule of deploy/k8s from deploy/observability/alerts.yml
	$(PY) deploy/k8s/components/prometheus-operator/generate.py

compose-smoke: install ## the production compose stack (demo profile) on local stand-in images: journey, metrics, worker kill
	bash deploy/smoke/run.sh

test: lint typecheck alert-rules k8s pytest ## everything CI runs: lint, type check, alert rules, k8s manifests, tests

# --- Load suite (loadtests/README.md). A private stack on its own database unless HOST names a target. -------
USERS ?= 100
SPAWN_RATE ?= 25
DURATION ?= 2m
HOST ?=
LOAD_ENV = USERS=$(USERS) SPAWN_RATE=$(SPAWN_RATE) DURATION=$(DURATION) HOST=$(HOST)

loadtest: services ## locust, USERS=100 SPAWN_RATE=25 DURATION=2m [HOST=url], then the audit; exit 1 on a fail
	$(LOAD_ENV) $(PY) -m loadtests.run

loadtest-stress: services ## ramp users in steps (LOAD_STEPS) until a budget breaks; report the knee
	SPAWN_RATE=$(SPAWN_RATE) HOST=$(HOST) $(PY) -m loadtests.run --stress

bench: services ## rps of /healthz, product list and order placement next to pgbench TPS of the order SQL
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" -eq 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null; } || { echo "make bench needs wrk: sudo apt-get install -y wrk"; exit 1; }
	$(PY) -m loadtests.bench

bench-scale: services ## query count and median latency per endpoint at 100 vs 10,000+ rows (exit 1 if it grows)
	$(PY) bench/scale.py

# --- Workshop (docs/workshop/): each failure mode's twin beside its fix, scored by the data. Never in production.
MODE ?=
WORKSHOP_HOST ?= 127.0.0.1
WORKSHOP_PORT ?= 8000
WORKSHOP_TWIN_PORT ?= 8001
WORKSHOP_PROVIDER_PORT ?= 8100
WORKSHOP_MODES := races n-plus-one capacity authorization frontend-state observability
check_mode = @case " $(WORKSHOP_MODES) " in *" $(MODE) "*) ;; *) echo "usage: make $@ MODE=<$(shell echo $(WORKSHOP_MODES) | tr ' ' '|')>"; exit 2;; esac

# The workshop's migrations run with the app installed, so `seed` (and the migrate it needs) sees it too.
workshop: export WORKSHOP_ENABLED := true
workshop: seed ## the shop with the workshop on: teacher page /workshop/ (staff), twins' own server on :8001
	@mkdir -p $(RUN_DIR)
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py workshop_setup
	@echo "Workshop on http://$(WORKSHOP_HOST):$(WORKSHOP_PORT)/workshop/ (log in as admin, password demo-password-123)"
	@rm -rf $(RUN_DIR)/prometheus && mkdir -p $(RUN_DIR)/prometheus
	@# Every simulated user comes from 127.0.0.1 (a room often shares one address): per-IP limits are raised, as
	@# the load suite's stack does; per-user limits stay as in production.
	WORKSHOP_BIND=$(WORKSHOP_HOST):$(WORKSHOP_PORT) WORKSHOP_TWIN_BIND=$(WORKSHOP_HOST):$(WORKSHOP_TWIN_PORT) \
		WORKSHOP_SHOP_URL=http://127.0.0.1:$(WORKSHOP_PORT) WORKSHOP_TWIN_URL=http://127.0.0.1:$(WORKSHOP_TWIN_PORT) \
		PAYMENT_PROVIDER_PORT=$(WORKSHOP_PROVIDER_PORT) PAYMENT_PROVIDER_URL=http://127.0.0.1:$(WORKSHOP_PROVIDER_PORT) \
		THROTTLE_IP_RATE=$${THROTTLE_IP_RATE:-1000000/min} THROTTLE_LOGIN_RATE=$${THROTTLE_LOGIN_RATE:-100000/min} \
		LOG_FORMAT=$${LOG_FORMAT:-json} PROMETHEUS_MULTIPROC_DIR=$(RUN_DIR)/prometheus \
		exec $(VENV)/bin/honcho start -d . -f workshop/Procfile

workshop-run: services ## MODE=...: twin and fix at the same load; scorecard to workshop/results/MODE/; exit 0 if the twin broke and the fix held
	$(check_mode)
	@$(STACK) packages chromium
	$(PY) -m workshop.run --mode $(MODE)

workshop-check: services ## fix-it track, MODE=...: rerun after editing workshop/twins/; exit 0 once its scorecard is clean
	$(check_mode)
	@$(STACK) packages chromium
	$(PY) -m workshop.run --mode $(MODE) --check

clean:
	-$(STACK) pgbouncer-stop
	rm -rf $(VENV) .tools .run staticfiles
