#!/bin/sh
# Every process of the image starts here: a fresh metrics directory, then the command (gunicorn by default).
set -eu
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  # Metrics across processes: values are files in this directory; a restarted container starts from none,
  # so a dead process's live gauges cannot linger (k8s keeps an emptyDir across container restarts).
  mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
  find "$PROMETHEUS_MULTIPROC_DIR" -mindepth 1 -delete
fi
exec "$@"
