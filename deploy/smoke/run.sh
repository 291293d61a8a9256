#!/usr/bin/env bash
# make compose-smoke: the shipped docker-compose.yml in production mode with the demo profile, driven as a new
# customer and an operator would, on a machine like the CI's (root, Debian, no image registry).
#
#   1. docker.io, docker-compose and debootstrap from apt when missing; dockerd started when not running
#   2. local stand-ins of the official images (deploy/smoke/standins.sh; cached between runs on one machine)
#   3. build the shop's images and bring the stack up (docker-compose.yml + deploy/smoke/docker-compose.standins.yml)
#   4. over https on 127.0.0.1: home page with its CSS, sign up, the verification mail in the demo's sink and its
#      link followed, add to cart, check out, the order paid (and its order mail, once wired); /readyz
#   5. Prometheus: web and worker targets up, payment metrics present
#   6. the worker container killed mid-run and restarted: every order still settles, once (its mail too, once wired)
#   7. down -v
# Each step prints its time. Traffic goes only to the ports the stack publishes on 127.0.0.1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# Compose lets the calling shell's variables win over --env-file. `make` exports PAYMENT_PROVIDER_URL (the local
# simulator on 127.0.0.1) and a developer's shell may hold others: none of them may leak into the stack.
for variable in $(grep -oE '\$\{[A-Z_]+' docker-compose.yml | cut -c3- | sort -u); do unset "$variable"; done

PROJECT="${SMOKE_PROJECT:-hardened-shop-smoke}"
HTTPS_PORT="${SMOKE_HTTPS_PORT:-18443}"
HTTP_PORT="${SMOKE_HTTP_PORT:-18080}"
PROMETHEUS_PORT="${SMOKE_PROMETHEUS_PORT:-19090}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
WORK="$(mktemp -d /tmp/hardened-shop-smoke.XXXXXX)"
STARTED="$EPOCHREALTIME"

log() { printf '\033[1m[smoke]\033[0m %s\n' "$*" >&2; }
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%6.1fs", b - a }'; }
exec 3>&1  # step times go here, whatever a step's own output is redirected to
timed() {
  local name="$1" began="$EPOCHREALTIME"
  shift
  "$@"
  printf '[smoke] %s  %s\n' "$(elapsed "$began")" "$name" >&3
}

install_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] && return 0
  "$ROOT/deploy/scripts/stack.sh" apt-install "${missing[@]}"
}

start_dockerd() {
  docker info >/dev/null 2>&1 && return 0
  [ "$(id -u)" -eq 0 ] || { log "the Docker engine is not running (start dockerd as root)"; exit 1; }
  log "starting dockerd (log: /var/log/hardened-shop-dockerd.log)"
  nohup dockerd >/var/log/hardened-shop-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && return 0; sleep 0.5; done
  tail -n 20 /var/log/hardened-shop-dockerd.log >&2
  exit 1
}

write_env_file() {
  # Fresh secrets for every run: nothing reusable is left behind.
  local secret
  secret() { "$PYTHON" -c 'import secrets, sys; print(secrets.token_hex(int(sys.argv[1])))' "$1"; }
  cat > "$WORK/smoke.env" <<ENV
SECRET_KEY=$(secret 32)
POSTGRES_PASSWORD=$(secret 16)
SHOP_DB_PASSWORD=$(secret 16)
METRICS_TOKEN=$(secret 16)
PAYMENT_SIMULATOR_CONTROL_TOKEN=$(secret 16)
DEMO_MODE=true
PAYMENT_PROVIDER_URL=http://provider:8100
SHOP_DOMAIN=localhost
SHOP_HTTPS_PORT=$HTTPS_PORT
SHOP_HTTP_PORT=$HTTP_PORT
PROMETHEUS_PORT=$PROMETHEUS_PORT
PAYMENT_REDRIVE_AFTER_S=15
EMAIL_FROM=Hardened Shop Smoke <orders@smoke.example.com>
SHOP_BASE_URL=https://localhost:$HTTPS_PORT
MAIL_CLAIM_LEASE_S=75
MAIL_REDRIVE_AFTER_S=15
ENV
}

install_packages
start_dockerd
if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi
write_env_file
C=("${COMPOSE[@]}" --env-file "$WORK/smoke.env" -p "$PROJECT" -f docker-compose.yml -f deploy/smoke/docker-compose.standins.yml --profile demo)

cleanup() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    log "failed: the last lines of each service's log"
    "${C[@]}" ps >&2 || true
    "${C[@]}" logs --tail 25 >&2 2>&1 || true
  fi
  timed "down -v" "${C[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$WORK"
  printf '[smoke] %s  total (exit %s)\n' "$(elapsed "$STARTED")" "$status" >&3
}
trap cleanup EXIT

# A run that died before its `down -v` leaves containers and volumes behind: start from nothing.
"${C[@]}" down -v --remove-orphans >/dev/null 2>&1 || true

timed "packages and dockerd" true
timed "local stand-ins of the official images" bash deploy/smoke/standins.sh 2> >(grep -v -e DEPRECATED -e buildx -e 'docs.docker.com' -e '^ *$' >&2)
timed "build the shop's images" "${C[@]}" build --quiet >/dev/null 2> >(grep -v -e DEPRECATED -e buildx -e 'docs.docker.com' -e '^ *$' >&2)
timed "stack up (migrations, seed, healthchecks)" "${C[@]}" up -d >/dev/null 2>&1

wait_ready() {
  local proxy=""
  for _ in $(seq 1 120); do
    proxy="$("${C[@]}" ps -q proxy)"
    if [ -n "$proxy" ] && docker cp "$proxy:/data/caddy/pki/authorities/local/root.crt" "$WORK/root.crt" 2>/dev/null \
      && curl -fsS -o /dev/null --cacert "$WORK/root.crt" "https://localhost:$HTTPS_PORT/healthz" 2>/dev/null; then
      break
    fi
    sleep 1
  done
  curl -fsS -o /dev/null --cacert "$WORK/root.crt" "https://localhost:$HTTPS_PORT/healthz"
  # Demo data is a one-shot service: the journey needs its catalog.
  for _ in $(seq 1 120); do
    [ "$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$("${C[@]}" ps -q seed)")" = "exited 0" ] && return 0
    sleep 1
  done
  log "seed_demo did not finish"
  return 1
}
timed "https answers with the stack's own certificate; demo data seeded" wait_ready

http_redirects() {
  local location
  location="$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' -H 'Host: localhost' "http://127.0.0.1:$HTTP_PORT/")"
  case "$location" in 30[18]\ https://localhost*) ;; *) log "http answered: $location"; return 1 ;; esac
}
timed "http redirects to https" http_redirects

JOURNEY=("$PYTHON" deploy/smoke/journey.py --base "https://localhost:$HTTPS_PORT" --ca "$WORK/root.crt"
  --prometheus "http://127.0.0.1:$PROMETHEUS_PORT" --compose "${C[*]}" --state "$WORK/state.json")
timed "the customer's journey" "${JOURNEY[@]}" journey
timed "the operator's view in Prometheus" "${JOURNEY[@]}" metrics
timed "the worker killed mid-run" "${JOURNEY[@]}" worker-kill
