"""moto in server mode on a loopback port, for ECR.

Wharf's AWS code (``registries/aws.py``) is tested over real HTTP against moto, with
fake ambient credentials in the environment so no test reaches the developer's own
AWS profile or the EC2 metadata service.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
import requests

from tests.servers.base import LOOPBACK, service_unavailable

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIAWHARFAMBIENTTEST",
    "AWS_SECRET_ACCESS_KEY": "ambient-secret-not-real",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never the developer's own profile, and never a slow EC2 metadata lookup.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto in server mode on a loopback port: its endpoint URL, e.g. ``http://127.0.0.1:PORT``.

    For the session, the environment holds fake ambient AWS credentials
    (``FAKE_AWS_ENV``), restored afterwards.
    """
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        service_unavailable("moto[server] is not installed")
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # moto's server logs every request through werkzeug; keep only its warnings.
    werkzeug_log = logging.getLogger("werkzeug")
    werkzeug_level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in FAKE_AWS_ENV.items():
            patch.setenv(name, value)
        yield f"http://{host}:{port}"
    server.stop()
    werkzeug_log.setLevel(werkzeug_level)


@pytest.fixture
def moto_checks_credentials(moto_server):
    """moto answers like AWS for unknown keys (it accepts anything by default)."""
    answer = requests.post(f"{moto_server}/moto-api/reset-auth", data=b"0", timeout=5)
    previous = answer.json()["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]
    yield moto_server
    requests.post(f"{moto_server}/moto-api/reset-auth", data=previous.encode(), timeout=5)
