"""gunicorn's settings for Wharf's production web server: ``gunicorn -c config/gunicorn.py``.

Used by the image's ``web`` entry point and by ``scripts/run-all.sh`` when ``DEBUG`` is off
(``runserver`` is for ``DEBUG=1`` only). Read from the environment:

- ``WHARF_BIND``: address to listen on (default ``0.0.0.0:$PORT``, ``PORT`` default 8000);
- ``WHARF_WEB_WORKERS``: worker processes (default twice the CPUs plus one, at most 8);
- ``WHARF_WEB_THREADS``: threads per worker (default 4);
- ``WHARF_WEB_TIMEOUT``: seconds a worker may go silent before it is restarted (default 30).

SIGTERM stops it gracefully: requests in flight get ``graceful_timeout`` seconds, so the
whole server is gone within 10 s (what a container runtime or Kubernetes waits before
SIGKILL). The access log goes to stdout and holds the path of each request, never its
query string or referrer, which could carry a token.
"""

import os

wsgi_app = "config.wsgi:application"

bind = [os.environ.get("WHARF_BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"]


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this container may use
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# Each worker is a whole Django process (tens of MB): past 8, add machines, not workers.
workers = int(os.environ.get("WHARF_WEB_WORKERS") or min(2 * _cpus() + 1, 8))
# Threads keep a slow client (a large chart upload) from holding a whole worker.
worker_class = "gthread"
threads = int(os.environ.get("WHARF_WEB_THREADS") or 4)
timeout = int(os.environ.get("WHARF_WEB_TIMEOUT") or 30)
graceful_timeout = 8
keepalive = 5
# Heartbeat files on a tmpfs: the root file system may be read-only, and a disk-backed
# /tmp can stall a worker's heartbeat.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
# No control socket (gunicornc): it would be written under $HOME, and nothing uses it.
control_socket_disable = True

# Only Django decides whether a request came over HTTPS (WHARF_BEHIND_TLS_PROXY sets
# SECURE_PROXY_SSL_HEADER): gunicorn would otherwise trust X-Forwarded-Proto from 127.0.0.1.
secure_scheme_headers: dict[str, str] = {}
forwarded_allow_ips = ""

accesslog = "-"
errorlog = "-"
# Address, time, method, path (no query string, no referrer), status, bytes, milliseconds.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'
# Wharf's own logs already go to stderr through Django's LOGGING.
capture_output = False


# --- Prometheus multiprocess mode ------------------------------------------------------
# With PROMETHEUS_MULTIPROC_DIR set (emptied when the container starts: scripts/entrypoint.sh),
# every worker counts into its own files there and /metrics adds them up; a worker that
# exits has its live gauges dropped.


def child_exit(server: object, worker: object) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]


# --- JSON lines -----------------------------------------------------------------------
# LOG_FORMAT=json: gunicorn's own lines (start, stop, worker timeouts, the access log) are
# JSON objects too, through Wharf's formatter, like everything Django and Celery log.
if os.environ.get("LOG_FORMAT") == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
        "handlers": {
            "stdout": {"class": "logging.StreamHandler", "formatter": "json",
                       "stream": "ext://sys.stdout"},
            "stderr": {"class": "logging.StreamHandler", "formatter": "json",
                       "stream": "ext://sys.stderr"},
        },
        # gunicorn merges this into its own defaults, whose root logger names a handler.
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        },
    }  # fmt: skip
