"""deploy/compose.yaml runs the image as tests/deploy/test_image.py does."""

from pathlib import Path

import yaml

from tests.deploy.test_image import SECRET_FILES

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"
WHARF_SERVICES = ("migrate", "web", "worker", "beat")


def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_every_wharf_service_runs_read_only_with_its_secrets_in_files():
    for name in WHARF_SERVICES:
        service = services()[name]
        assert service["read_only"] is True, name
        assert "/tmp" in service["tmpfs"], name
        for setting, secret in SECRET_FILES.items():
            assert service["environment"][setting] == f"/run/secrets/{secret}", name
            assert secret in service["secrets"], name
        assert service["stop_grace_period"] == "10s", name


def test_web_worker_and_beat_use_the_image_entry_points_after_migrate():
    for name in ("web", "worker", "beat"):
        service = services()[name]
        assert service["command"] == [name]
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert "entrypoint.sh migrate" in " ".join(services()["migrate"]["entrypoint"])


def test_beat_is_never_scaled():
    assert services()["beat"].get("deploy", {}).get("replicas", 1) == 1
