#!/usr/bin/env bash
# Serve Wharf: the web server, a Celery worker and Celery beat, in the foreground.
# Ctrl-C, SIGTERM (or any one of them exiting) stops all three, within STOP_SECONDS.
# With DEBUG=1 (make run) the web server is Django's runserver; otherwise gunicorn
# (config/gunicorn.py) on 127.0.0.1:$PORT, or WHARF_BIND.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
PORT=${PORT:-8000}
STOP_SECONDS=${STOP_SECONDS:-8}
export DEBUG=${DEBUG:-1}
# The web's and the worker's processes count into one directory, which /metrics adds up
# (prometheus-client's multiprocess mode); last run's figures are cleared.
export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-${WHARF_VAR_DIR:-var}/metrics}
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -name '*.db' -delete

pids=()

kill_tree() {  # a process and everything it started (Celery's pool processes)
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$child"; done
  kill -KILL "$1" 2>/dev/null || true
}

any_alive() {
  local pid
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && return 0; done
  return 1
}

stop() {
  trap - INT TERM EXIT
  echo "Stopping Wharf…"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  # A clean shutdown first; whatever still runs after STOP_SECONDS is killed.
  local waited=0
  while any_alive && [ "$waited" -lt $((STOP_SECONDS * 5)) ]; do
    sleep 0.2
    waited=$((waited + 1))
  done
  local pid
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && kill_tree "$pid"; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

# Each process gets its own log prefix so the three can be told apart. The prefixing sed
# ignores Ctrl-C and SIGTERM: it ends when its process closes the pipe, so nothing shutting
# down ever writes into a pipe that is gone (a Celery worker could hang in its shutdown).
run() {
  local name=$1; shift
  "$@" > >(trap '' INT TERM; exec sed -u "s/^/[$name] /") 2>&1 &
  pids+=($!)
}

case "${DEBUG,,}" in
  1 | true | yes | on | y | t)
    run web "$PY" manage.py runserver "127.0.0.1:$PORT" --noreload ;;
  *)
    WHARF_BIND=${WHARF_BIND:-127.0.0.1:$PORT} run web "$PY" -m gunicorn -c config/gunicorn.py ;;
esac
run worker "$PY" -m celery -A config worker --loglevel=INFO --concurrency=2
run beat   "$PY" -m celery -A config beat --loglevel=INFO
echo "Wharf is at http://127.0.0.1:$PORT/ (sign in as admin). Ctrl-C stops it."
wait -n "${pids[@]}"
