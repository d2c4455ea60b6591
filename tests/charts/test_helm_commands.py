"""The helm lines on the chart page: one set per way the source can be reached, each value
quoted, each TLS choice with the flags Helm needs (checked against Helm's SDK in
test_helm_commands_with_helm.py)."""

from __future__ import annotations

import shlex

import pytest
from django.urls import reverse

from charts.helmcommands import helm_commands
from charts.models import Chart, ChartSource, ChartVersion, HelmRepository
from tests.factories import RegistryFactory

pytestmark = pytest.mark.django_db

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def oci_chart(tls_mode: str = "secure", public: bool = True) -> tuple[Chart, ChartVersion]:
    registry = RegistryFactory(
        name="team",
        url="registry.example:5000",
        tls_mode=tls_mode,
        ca_certificate=PEM if tls_mode == "ca" else "",
        registry_type="public" if public else "private",
        chart_source=True,
    )
    source = ChartSource.objects.create(kind="oci", registry=registry, repository="charts/web")
    chart = Chart.objects.create(source=source, name="web", latest_version="1.2.0")
    return chart, ChartVersion.objects.create(chart=chart, version="1.2.0", fingerprint="x")


def helm_chart(url: str, tls_mode: str = "secure", **fields) -> tuple[Chart, ChartVersion]:
    repository = HelmRepository.objects.create(
        name="stable", url=url, tls_mode=tls_mode, ca_certificate=PEM if tls_mode == "ca" else "",
        **fields,
    )  # fmt: skip
    source = ChartSource.objects.create(kind="helm", helm_repository=repository)
    chart = Chart.objects.create(source=source, name="web", latest_version="1.2.0")
    return chart, ChartVersion.objects.create(chart=chart, version="1.2.0", fingerprint="x")


def lines(guide) -> dict[str, dict[str, str]]:
    return {v.key: {c.key: c.line for c in v.commands} for v in guide.variants}


def test_a_verified_oci_registry_needs_no_flag():
    assert lines(helm_commands(*oci_chart())) == {
        "secure": {
            "install": "helm install web oci://registry.example:5000/charts/web --version 1.2.0",
            "pull": "helm pull oci://registry.example:5000/charts/web --version 1.2.0",
        }
    }


def test_an_insecure_oci_registry_gets_the_plain_http_and_the_skip_verify_lines():
    ref = "oci://registry.example:5000/charts/web"
    assert lines(helm_commands(*oci_chart("insecure", public=False))) == {
        "plain-http": {
            "login": "helm registry login registry.example:5000 --plain-http "
            '--username "$HELM_USERNAME" --password "$HELM_PASSWORD"',
            "install": f"helm install web {ref} --version 1.2.0 --plain-http",
            "pull": f"helm pull {ref} --version 1.2.0 --plain-http",
        },
        "insecure-tls": {
            "login": "helm registry login registry.example:5000 --insecure "
            '--username "$HELM_USERNAME" --password "$HELM_PASSWORD"',
            "install": f"helm install web {ref} --version 1.2.0 --insecure-skip-tls-verify",
            "pull": f"helm pull {ref} --version 1.2.0 --insecure-skip-tls-verify",
        },
    }


def test_a_private_ca_is_given_to_helm_as_a_ca_file_the_page_shows():
    guide = helm_commands(*oci_chart("ca", public=False))
    assert guide.ca_file == "team-ca.crt" and guide.ca_pem == PEM
    commands = lines(guide)["ca"]
    assert commands["login"].startswith(
        "helm registry login registry.example:5000 --ca-file team-ca.crt "
    )
    assert commands["pull"].endswith("--version 1.2.0 --ca-file team-ca.crt")


def test_a_helm_repository_gets_the_repo_add_and_the_one_line_forms():
    guide = helm_commands(*helm_chart("https://charts.example.com/stable"))
    assert lines(guide) == {
        "one-line": {
            "install": "helm install web web --repo https://charts.example.com/stable --version 1.2.0",
            "pull": "helm pull web --repo https://charts.example.com/stable --version 1.2.0",
        },
        "repo-add": {
            "repo-add": "helm repo add stable https://charts.example.com/stable",
            "install-repo": "helm install web stable/web --version 1.2.0",
            "pull-repo": "helm pull stable/web --version 1.2.0",
        },
    }


@pytest.mark.parametrize(
    ("url", "tls_mode", "flags"),
    [
        ("http://charts.example.com", "insecure", ""),  # plain HTTP needs no flag for a repository
        ("https://charts.example.com", "insecure", " --insecure-skip-tls-verify"),
        ("https://charts.example.com", "ca", " --ca-file stable-ca.crt"),
    ],
)
def test_a_helm_repositorys_tls_choice_goes_on_repo_add_and_the_one_line_form(url, tls_mode, flags):
    commands = lines(helm_commands(*helm_chart(url, tls_mode)))
    assert commands["repo-add"]["repo-add"] == f"helm repo add stable {url}{flags}"
    assert commands["one-line"]["pull"] == f"helm pull web --repo {url} --version 1.2.0{flags}"


def test_credentials_come_from_the_environment_and_never_from_wharf():
    chart, version = helm_chart(
        "https://charts.example.com", access="private", username="reader", password="s3cret-x"
    )
    guide = helm_commands(chart, version)
    text = " ".join(c.line for v in guide.variants for c in v.commands)
    assert "s3cret-x" not in text and "reader" not in text
    assert shlex.split(lines(guide)["one-line"]["install"])[-4:] == [
        "--username", "$HELM_USERNAME", "--password", "$HELM_PASSWORD",
    ]  # fmt: skip


def test_the_chart_page_has_a_copy_button_for_each_line_and_no_inline_script(user_client):
    chart, _ = oci_chart("insecure")
    html = user_client.get(reverse("charts:chart_detail", args=[chart.pk])).content.decode()
    for element in (
        "helm-install",
        "helm-pull",
        "helm-insecure-tls-install",
        "helm-insecure-tls-pull",
    ):
        assert f'id="{element}"' in html
        assert f'data-copy-target="#{element}"' in html
    assert "<script>" not in html and "onclick" not in html
    assert "/static/wharf.js" in html
