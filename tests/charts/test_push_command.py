"""``manage.py push_chart`` for pipelines: the same checks and push, exit codes that say so."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from charts.management.commands.push_chart import Command as PushChartCommand
from charts.models import ChartPush
from tests.chartkit import make_chart_archive
from tests.charts.helpers import unique
from tests.charts.pushkit import fake_provenance, pull_with_oras, push_registry, tags_of

pytestmark = pytest.mark.django_db(transaction=True)


def write(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_command_pushes_and_prints_the_reference_and_digest(
    private_chart_registry, tmp_path, capsys
):
    name = unique("cli")
    registry = push_registry(private_chart_registry)
    archive = make_chart_archive(name, "3.1.0+ci.7")
    chart = write(tmp_path, f"{name}-3.1.0+ci.7.tgz", archive)
    prov = write(tmp_path, "c.prov", fake_provenance(archive, f"{name}-3.1.0+ci.7.tgz"))

    call_command("push_chart", registry.name, chart, "--prov", prov, "--prefix", "ci")

    out = capsys.readouterr().out
    push = ChartPush.objects.get()
    assert push.status == ChartPush.Status.SUCCEEDED
    assert f"oci://{private_chart_registry.host}/ci/{name}:3.1.0_ci.7" in out
    assert push.manifest_digest in out
    _, blobs = pull_with_oras(private_chart_registry, f"ci/{name}", "3.1.0_ci.7")
    assert archive in blobs.values()


def test_command_fails_with_the_archive_problem_and_pushes_nothing(chart_registry, tmp_path):
    registry = push_registry(chart_registry)
    chart = write(tmp_path, "broken.tgz", b"not a chart at all")

    with pytest.raises(CommandError, match="not a gzip-compressed chart archive"):
        call_command("push_chart", registry.name, chart)

    assert not ChartPush.objects.exists()


def test_command_fails_when_the_registry_refuses_the_push(private_chart_registry, tmp_path):
    name = unique("cli-denied")
    registry = push_registry(private_chart_registry, secret="not-the-Passw0rd")
    chart = write(tmp_path, "c.tgz", make_chart_archive(name, "1.0.0"))

    with pytest.raises(CommandError, match="rejected the credentials") as failure:
        call_command("push_chart", registry.name, chart)

    assert "not-the-Passw0rd" not in str(failure.value)
    assert ChartPush.objects.get().status == ChartPush.Status.FAILED
    assert tags_of(private_chart_registry, name) == []


def test_command_refuses_an_unknown_registry_or_one_without_push_helm(chart_registry, tmp_path):
    chart = write(tmp_path, "c.tgz", make_chart_archive(unique("cli-off"), "1.0.0"))
    registry = push_registry(chart_registry, push_helm=False)

    with pytest.raises(CommandError, match="No registry named"):
        call_command("push_chart", "no-such-registry", chart)
    with pytest.raises(CommandError, match="Push helm packages"):
        call_command("push_chart", registry.name, chart)
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("push_chart", registry.name, str(tmp_path / "missing.tgz"))


def test_command_refuses_a_gcr_registry_even_one_saved_with_push_helm_before_the_rule(
    chart_registry, tmp_path
):
    chart = write(tmp_path, "c.tgz", make_chart_archive(unique("cli-gcr"), "1.0.0"))
    registry = push_registry(chart_registry, provider="gcr")  # saved without the model's rules

    with pytest.raises(CommandError, match="is not an OCI registry: it cannot store Helm charts"):
        call_command("push_chart", registry.name, chart)
    assert not ChartPush.objects.exists()


def test_command_exits_non_zero_with_the_message_on_stderr(chart_registry, tmp_path, capsys):
    registry = push_registry(chart_registry)
    chart = write(tmp_path, "bad.tgz", b"nope")

    with pytest.raises(SystemExit) as exit_:  # as from the shell: manage.py push_chart …
        PushChartCommand().run_from_argv(["manage.py", "push_chart", registry.name, chart])

    assert exit_.value.code == 1
    assert "not a gzip-compressed chart archive" in capsys.readouterr().err


def test_command_records_its_operator_given_with_as(chart_registry, tmp_path, django_user_model):
    from config.models import AuditEntry, UserRole

    alice = django_user_model.objects.create_user("alice")
    UserRole.objects.create(user=alice, role="operator")  # a viewer may not push
    registry = push_registry(chart_registry)
    chart = write(tmp_path, "c.tgz", make_chart_archive(unique("cli-as"), "1.0.0"))

    call_command("push_chart", registry.name, chart, "--as", "alice")

    logged = AuditEntry.objects.get(object_type="chart push")
    assert (logged.username, logged.user) == ("push_chart by alice", alice)
    assert ChartPush.objects.get().user == alice


def test_command_records_the_os_user_without_as(chart_registry, tmp_path):
    import getpass

    from config.models import AuditEntry

    registry = push_registry(chart_registry)
    chart = write(tmp_path, "c.tgz", make_chart_archive(unique("cli-os"), "1.0.0"))

    call_command("push_chart", registry.name, chart)

    logged = AuditEntry.objects.get(object_type="chart push")
    assert logged.username == f"push_chart by os:{getpass.getuser()}"
    assert logged.user is None


def test_command_refuses_an_unknown_operator(chart_registry, tmp_path):
    registry = push_registry(chart_registry)
    chart = write(tmp_path, "c.tgz", make_chart_archive(unique("cli-nobody"), "1.0.0"))

    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("push_chart", registry.name, chart, "--as", "nobody")

    assert not ChartPush.objects.exists()
