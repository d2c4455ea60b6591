"""The image's HEALTHCHECK: a web container answers ``/healthz`` with 200.

A worker or beat container has no web server: it is healthy while its process runs (the
container ends when it does), so this only asks ``/healthz`` when PID 1 is gunicorn.
The request names a host Wharf answers to (the first plain name in ALLOWED_HOSTS), or
Django would refuse it as a foreign Host.
"""

import os
import sys
import urllib.request
from pathlib import Path


def _port() -> str:
    bind = os.environ.get("WHARF_BIND", "")
    return bind.rsplit(":", 1)[1] if ":" in bind else os.environ.get("PORT", "8000")


def _host() -> str:
    for name in os.environ.get("ALLOWED_HOSTS", "").split(","):
        name = name.strip()
        if name and not name.startswith((".", "*")):
            return name
    return "localhost"


def main() -> int:
    if b"gunicorn" not in Path("/proc/1/cmdline").read_bytes():
        return 0
    request = urllib.request.Request(
        f"http://127.0.0.1:{_port()}/healthz", headers={"Host": _host()}
    )
    try:
        with urllib.request.urlopen(request, timeout=4) as response:  # noqa: S310
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"/healthz: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
