#!/usr/bin/env bash
# Local stand-ins of the official images docker-compose.yml names, built from Debian packages.
#
# No image registry is reachable on machines like the CI's, but Debian's mirror is. So: a Debian base made with
# debootstrap and `docker import`, and on it one small image per official image, of the same major version,
# honouring the same contract (paths, entrypoint, variables) that the compose file relies on. The smoke test
# substitutes them with deploy/smoke/docker-compose.standins.yml; everything else is what users run.
#
# Cached between runs on one machine: the base is made once (its tag is the cache), and the stand-ins are
# ordinary docker builds whose layers the engine keeps, so a warm run takes seconds.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PREFIX="${STANDIN_PREFIX:-hardened-shop-standin}"
BASE="$PREFIX/debian:bookworm"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
WORK_DIR="${STANDIN_WORK_DIR:-/var/cache/hardened-shop-standins}"

log() { printf '\033[1m[standins]\033[0m %s\n' "$*" >&2; }

base_image() {
  if docker image inspect "$BASE" >/dev/null 2>&1; then
    log "$BASE cached"
    return 0
  fi
  log "debootstrap --variant=minbase bookworm (once per machine)"
  mkdir -p "$WORK_DIR"
  local rootfs
  rootfs="$(mktemp -d "$WORK_DIR/rootfs.XXXXXX")"
  trap 'rm -rf "$rootfs"' RETURN
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$WORK_DIR/debootstrap.log" 2>&1 \
    || { tail -n 20 "$WORK_DIR/debootstrap.log" >&2; exit 1; }
  # The same suites as the host (updates and security too), when the host uses the deb822 sources file.
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/debian.sources"
    rm -f "$rootfs/etc/apt/sources.list"
  fi
  # Containers have no init: package scripts must not try to start services (Debian's policy-rc.d convention).
  printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
  chmod +x "$rootfs/usr/sbin/policy-rc.d"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import --change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]' - "$BASE" >/dev/null
  log "$BASE imported"
}

standin() {
  local name="$1" tag="$2" context
  context="$(mktemp -d)"
  cp "$HERE/standins/"* "$context/"
  mkdir -p "$context/local-ca"
  # This machine's own certificate authorities (e.g. a TLS-intercepting egress proxy), for pip and uv.
  cp /usr/local/share/ca-certificates/*.crt "$context/local-ca/" 2>/dev/null || true
  docker build --quiet --build-arg "BASE=$BASE" -t "$PREFIX/$name:$tag" -f "$context/$name.Dockerfile" "$context" >/dev/null \
    || { rm -rf "$context"; log "building $PREFIX/$name:$tag failed"; exit 1; }
  rm -rf "$context"
  log "$PREFIX/$name:$tag ready"
}

base_image
standin python 3.11
standin postgres 15
standin redis 7
standin pgbouncer 1
standin caddy 2
standin prometheus 2
