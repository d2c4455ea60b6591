"""An ECR token AWS does not issue is a RegistryError where the connection is built.

So every caller (Test connection, chart sync, pushes, chart files, pull secrets) catches
the one error type of reaching a registry, and shows the same message.
"""

from __future__ import annotations

import pytest

from charts.models import SyncRun
from registries.oci import RegistryError
from tests.chartkit import make_chart_archive
from tests.charts.helpers import source_of, sync
from tests.charts.pushkit import push_now
from tests.factories import RegistryFactory
from tests.servers.base import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.services]

ECR_URL = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
SECRET = "ecr-secret-key-do-not-leak"


def ecr_registry(**fields):
    values = {
        "name": "ecr", "provider": "ecr", "url": ECR_URL, "auth_type": "access-key",
        "username": "AKIAUNKNOWNKEY", "secret": SECRET,
    }  # fmt: skip
    values.update(fields)
    return RegistryFactory(**values)


def test_a_refused_token_is_a_registry_auth_error_with_the_aws_message(
    moto_checks_credentials, settings
):
    settings.WHARF_AWS_ENDPOINT_URL = moto_checks_credentials
    with pytest.raises(RegistryError) as caught:
        ecr_registry().connection()
    assert caught.value.kind == RegistryError.AUTH
    assert str(caught.value).startswith("AWS did not issue an ECR token: AWS rejected")
    assert SECRET not in str(caught.value)
    assert caught.value.host == ECR_URL


def test_aws_out_of_reach_is_a_registry_unreachable_error(settings):
    settings.WHARF_AWS_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    settings.WHARF_REGISTRY_TIMEOUT = 2
    with pytest.raises(RegistryError) as caught:
        ecr_registry().connection()
    assert caught.value.kind == RegistryError.UNREACHABLE
    assert str(caught.value).startswith("AWS did not issue an ECR token: Could not reach")


def test_a_chart_sync_of_an_ecr_source_records_the_aws_message(moto_checks_credentials, settings):
    settings.WHARF_AWS_ENDPOINT_URL = moto_checks_credentials
    registry = ecr_registry(chart_source=True, repositories=["charts"], push_images=False)

    run = sync(source_of(registry, "charts"))

    assert run.status == SyncRun.Status.FAILED
    assert run.error.startswith("AWS did not issue an ECR token: AWS rejected")
    assert SECRET not in run.error


def test_a_push_to_an_ecr_registry_records_the_aws_message(moto_checks_credentials, settings):
    settings.WHARF_AWS_ENDPOINT_URL = moto_checks_credentials
    registry = ecr_registry(push_helm=True)

    push = push_now(registry, make_chart_archive("web", "1.0.0"))

    assert push.status == "failed"
    assert push.error.startswith("AWS did not issue an ECR token: AWS rejected")
    assert SECRET not in push.error
