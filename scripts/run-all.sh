#!/usr/bin/env bash
# Serve Wharf: the web server, a Celery worker and Celery beat, in the foreground.
# Ctrl-C (or any one of them exiting) stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
PORT=${PORT:-8000}
export DEBUG=${DEBUG:-1}

pids=()
stop() {
  trap - INT TERM EXIT
  echo "Stopping Wharf…"
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM EXIT

# Each process gets its own log prefix so the three can be told apart.
run() {
  local name=$1; shift
  "$@" > >(sed -u "s/^/[$name] /") 2>&1 &
  pids+=($!)
}

run web    "$PY" manage.py runserver "127.0.0.1:$PORT" --noreload
run worker "$PY" -m celery -A config worker --loglevel=INFO --concurrency=2
run beat   "$PY" -m celery -A config beat --loglevel=INFO
echo "Wharf is at http://127.0.0.1:$PORT/ (sign in as admin). Ctrl-C stops it."
wait -n "${pids[@]}"
