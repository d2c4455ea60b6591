#!/usr/bin/env bash
# The image's entry point: one image, one process kind per container.
#
#   web              gunicorn (config/gunicorn.py) on 0.0.0.0:$PORT (8000)
#   worker           a Celery worker: every queue, or only WHARF_WORKER_QUEUES=sync,push,...
#   beat             Celery beat (run exactly one)
#   migrate          apply database migrations, then exit
#   manage ARGS...   any management command, e.g. `manage ensure_admin`, `manage shell`
#
# Each one is exec'd, so it is PID 1 of the container and gets SIGTERM itself.
set -euo pipefail
cd /app

command=${1:-web}
[ $# -gt 0 ] && shift

# Counters of the last container's processes are not this one's (prometheus-client's
# multiprocess mode): a web or worker starts with PROMETHEUS_MULTIPROC_DIR emptied.
clear_metrics() {
  if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -name '*.db' -delete
  fi
}

case "$command" in
  web)
    clear_metrics
    exec gunicorn -c config/gunicorn.py "$@" ;;
  worker)
    clear_metrics
    # SIGTERM as a cold shutdown: running tasks get WHARF_WORKER_SHUTDOWN_SECONDS, then
    # are handed back to the queue (late acks), so the container stops within 10 s.
    export REMAP_SIGTERM=SIGQUIT
    args=(--loglevel "${LOG_LEVEL:-INFO}")
    [ -n "${WHARF_WORKER_QUEUES:-}" ] && args+=(--queues "$WHARF_WORKER_QUEUES")
    [ -n "${WHARF_WORKER_CONCURRENCY:-}" ] && args+=(--concurrency "$WHARF_WORKER_CONCURRENCY")
    exec celery -A config worker "${args[@]}" "$@" ;;
  beat)
    exec celery -A config beat --loglevel "${LOG_LEVEL:-INFO}" "$@" ;;
  migrate)
    exec python manage.py migrate --noinput "$@" ;;
  manage)
    exec python manage.py "$@" ;;
  *)
    echo "Unknown command '$command': use web, worker, beat, migrate or manage ARGS..." >&2
    exit 64 ;;
esac
