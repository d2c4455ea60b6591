"""Start-up settings: secrets required in production, generated once in development."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps([s.SECRET_KEY, s.WHARF_ENCRYPTION_KEYS, s.CELERY_BROKER_URL]))"
)


def start(tmp_path, **env):
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WHARF_", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG"))
    }
    clean.update(
        {"DJANGO_SETTINGS_MODULE": "config.settings", "WHARF_VAR_DIR": str(tmp_path)}, **env
    )
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_start_without_secret_key_stops_with_a_clear_message(tmp_path):
    result = start(tmp_path, DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_production_start_without_encryption_key_stops_with_a_clear_message(tmp_path):
    result = start(tmp_path, DEBUG="0", SECRET_KEY="x" * 50)
    assert result.returncode != 0
    assert "WHARF_ENCRYPTION_KEYS is not set" in result.stderr


def test_development_keys_are_generated_once_and_reused(tmp_path):
    first = start(tmp_path, DEBUG="1")
    second = start(tmp_path, DEBUG="1")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert (tmp_path / "encryption_key").exists()


def test_broker_needs_no_server_without_redis_url(tmp_path):
    result = start(tmp_path, DEBUG="1")
    assert '"filesystem://"' in result.stdout


def test_redis_url_selects_the_redis_broker(tmp_path):
    result = start(tmp_path, DEBUG="1", REDIS_URL="redis://127.0.0.1:6379/3")
    assert '"redis://127.0.0.1:6379/3"' in result.stdout


@pytest.mark.django_db
def test_sqlite_runs_in_wal_mode(tmp_path):
    db = tmp_path / "wharf.sqlite3"
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "1", "WHARF_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings",
             "DATABASE_URL": f"sqlite:///{db}"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


HTTPS_PROBE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps([getattr(s, 'SECURE_PROXY_SSL_HEADER', None), s.SECURE_SSL_REDIRECT, "
    "s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS]))"
)


def probe_https(tmp_path, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WHARF_", "SECURE_"))}
    clean.update({"DJANGO_SETTINGS_MODULE": "config.settings", "WHARF_VAR_DIR": str(tmp_path),
                  "DEBUG": "1"}, **env)  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", HTTPS_PROBE], cwd=ROOT, env=clean, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_https_settings_default_to_no_proxy_trust_no_redirect_and_no_hsts(tmp_path):
    assert probe_https(tmp_path) == [None, False, 0, False]


def test_behind_a_tls_proxy_wharf_trusts_its_proto_header_and_redirects_to_https(tmp_path):
    header, redirect, _, _ = probe_https(tmp_path, WHARF_BEHIND_TLS_PROXY="1")
    assert header == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert redirect is True


def test_hsts_and_the_redirect_are_read_from_the_environment(tmp_path):
    settings = probe_https(
        tmp_path, SECURE_HSTS_SECONDS="31536000", SECURE_HSTS_INCLUDE_SUBDOMAINS="1",
        SECURE_SSL_REDIRECT="1",
    )  # fmt: skip
    assert settings == [None, True, 31536000, True]


def test_deploy_check_is_quiet_about_https_once_it_is_configured(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WHARF_", "SECURE_", "DEBUG"))}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "WHARF_VAR_DIR": str(tmp_path),
                "DEBUG": "0", "SECRET_KEY": "k" * 60, "WHARF_BEHIND_TLS_PROXY": "1",
                "SECURE_HSTS_SECONDS": "31536000",
                "WHARF_ENCRYPTION_KEYS": "xtUkkm4SDRdYFs4DZ9jmm9IK-7HEI3ZFoP3wjyowBpQ="})  # fmt: skip
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert "security.W004" not in output and "security.W008" not in output, output


def test_every_secret_can_come_from_a_mounted_file(tmp_path):
    # A Kubernetes Secret mounted as files: the value is the file's content, without
    # the newline an editor leaves at its end.
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "secret_key").write_text("k" * 50 + "\n")
    (secrets / "keys").write_text("a" * 43 + "=\n")
    (secrets / "redis").write_text("redis://127.0.0.1:6379/5\n")
    result = start(
        tmp_path,
        DEBUG="0",
        SECRET_KEY_FILE=str(secrets / "secret_key"),
        WHARF_ENCRYPTION_KEYS_FILE=str(secrets / "keys"),
        REDIS_URL_FILE=str(secrets / "redis"),
    )
    assert result.returncode == 0, result.stderr
    secret_key, keys, broker = json.loads(result.stdout)
    assert secret_key == "k" * 50
    assert broker == "redis://127.0.0.1:6379/5"
    assert "a" * 43 + "=" in json.dumps(keys)
    assert "\n" not in json.dumps(keys)


def test_a_missing_secret_file_stops_start_up_naming_it(tmp_path):
    result = start(tmp_path, DEBUG="0", SECRET_KEY_FILE=str(tmp_path / "absent"))
    assert result.returncode != 0
    assert "absent" in result.stderr


def test_postgresql_keeps_connections_and_checks_them_before_reuse(tmp_path):
    probe = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "d = s.DATABASES['default']; print(json.dumps([d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS']]))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WHARF_", "DATABASE_URL"))}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", WHARF_VAR_DIR=str(tmp_path), DEBUG="1",
               DATABASE_URL="postgres://u@127.0.0.1:5432/x", WHARF_DB_CONN_MAX_AGE="30")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [30, True]
