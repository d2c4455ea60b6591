"""The exact ``helm`` lines that pull or install one chart version, for the chart page.

How Helm must be told to reach the source follows from the source's TLS choice:

- verified against the trust store: no flag;
- verified against a private CA: ``--ca-file`` (``helm registry login`` too), the file
  being the CA certificate the page shows;
- "Allow insecure connection": for an OCI registry Wharf cannot tell from its settings
  whether it speaks plain HTTP (``--plain-http``) or HTTPS with a certificate nobody
  verifies (``--insecure-skip-tls-verify``; ``--insecure`` for ``registry login``), so
  both are given; a Helm repository says so in its URL (``http://`` needs no flag).

Names, versions and URLs come from upstream indexes: every value is shell-quoted
(:func:`shlex.quote`), so a line a user copies runs Helm and nothing else. Credentials
are never put in a line: they are read from ``$HELM_USERNAME`` / ``$HELM_PASSWORD``.

No Django views here; each flag's counterpart in Helm's SDK is checked by
tests/charts/test_helm_commands_with_helm.py against real registries.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace

from charts.models import Chart, ChartSource, ChartVersion
from config import http

PLAIN_HTTP = "--plain-http"
INSECURE_SKIP_TLS_VERIFY = "--insecure-skip-tls-verify"
CA_FILE = "--ca-file"
LOGIN_INSECURE = "--insecure"  # ``helm registry login``'s name for skipping verification
CREDENTIALS = '--username "$HELM_USERNAME" --password "$HELM_PASSWORD"'


@dataclass(frozen=True)
class Command:
    key: str  # "login", "repo-add", "install", "pull", "install-repo", "pull-repo"
    label: str
    line: str
    # The page's element id: helm-install and helm-pull for the first way, else
    # helm-<variant>-<key>.
    element_id: str = ""


@dataclass(frozen=True)
class Variant:
    """One way to reach the source, with its commands (one per TLS set-up it may have)."""

    key: str
    title: str  # "" when there is only one way
    commands: tuple[Command, ...]


@dataclass(frozen=True)
class InstallGuide:
    variants: tuple[Variant, ...]
    ca_file: str = ""  # the file name the lines use for the private CA, if any
    ca_pem: str = field(default="", repr=False)
    needs_credentials: bool = False


def _ca_file_name(source: ChartSource) -> str:
    # Registry and repository names follow NAME_RULE (letters, digits, dashes).
    name = source.oci_registry.name if source.is_oci else source.helm.name
    return f"{name}-ca.crt"


def _line(*parts: str, flags: tuple[str, ...] = (), raw: str = "") -> str:
    """``parts`` and ``flags`` quoted one by one; ``raw`` (Wharf's own text) as it is."""
    words = [shlex.quote(p) for p in (*parts, *flags)]
    return " ".join(words + ([raw] if raw else []))


def _oci_variants(
    chart: Chart, version: ChartVersion, source: ChartSource
) -> tuple[list[Variant], str]:
    registry = source.oci_registry
    tls = registry.tls_mode
    ca_file = _ca_file_name(source) if tls == http.TLS_CA else ""
    # (key, title, flags of pull/install, flags of registry login) for each way
    ways: list[tuple[str, str, tuple[str, ...], tuple[str, ...]]]
    if tls == http.TLS_INSECURE:
        ways = [
            ("plain-http", "If the registry speaks plain HTTP", (PLAIN_HTTP,), (PLAIN_HTTP,)),
            (
                "insecure-tls",
                "If it speaks HTTPS with a certificate that is not verified",
                (INSECURE_SKIP_TLS_VERIFY,),
                (LOGIN_INSECURE,),
            ),
        ]
    elif tls == http.TLS_CA:
        ways = [("ca", "", (CA_FILE, ca_file), (CA_FILE, ca_file))]
    else:
        ways = [("secure", "", (), ())]
    # A Helm chart in OCI lives in its own repository: the reference names it whole.
    ref, ver = source.location, version.version
    variants = []
    for key, title, flags, login_flags in ways:
        commands = []
        if not registry.is_public:
            host = registry.url.partition("/")[0]
            commands.append(
                Command(
                    "login",
                    "Sign in to the registry",
                    _line("helm", "registry", "login", host, flags=login_flags, raw=CREDENTIALS),
                )
            )
        commands += [
            Command(
                "install",
                "Install",
                _line("helm", "install", chart.name, ref, "--version", ver, flags=flags),
            ),
            Command("pull", "Download", _line("helm", "pull", ref, "--version", ver, flags=flags)),
        ]
        variants.append(Variant(key, title, tuple(commands)))
    return variants, ca_file


def _helm_variants(
    chart: Chart, version: ChartVersion, source: ChartSource
) -> tuple[list[Variant], str]:
    repository = source.helm
    url, ver, name = repository.url, version.version, chart.name
    tls = repository.tls_mode
    ca_file = ""
    flags: tuple[str, ...] = ()
    if tls == http.TLS_CA:
        ca_file = _ca_file_name(source)
        flags = (CA_FILE, ca_file)
    elif tls == http.TLS_INSECURE and url.startswith("https://"):
        flags = (INSECURE_SKIP_TLS_VERIFY,)
    creds = CREDENTIALS if repository.is_private else ""
    local = f"{repository.name}/{name}"
    added = Variant(
        "repo-add",
        "With the repository added to Helm",
        (
            Command(
                "repo-add",
                "Add the repository",
                _line("helm", "repo", "add", repository.name, url, flags=flags, raw=creds),
            ),
            Command(
                "install-repo",
                "Install",
                _line("helm", "install", name, local, "--version", ver),
            ),
            Command("pull-repo", "Download", _line("helm", "pull", local, "--version", ver)),
        ),
    )
    one_line = Variant(
        "one-line",
        "In one line, without adding the repository",
        (
            Command(
                "install",
                "Install",
                _line(
                    *("helm", "install", name, name),
                    *("--repo", url, "--version", ver),
                    flags=flags,
                    raw=creds,
                ),
            ),
            Command(
                "pull",
                "Download",
                _line(
                    "helm", "pull", name, "--repo", url, "--version", ver, flags=flags, raw=creds
                ),
            ),
        ),
    )
    return [one_line, added], ca_file


def helm_commands(chart: Chart, version: ChartVersion) -> InstallGuide:
    """Every way to pull and install ``version`` of ``chart`` that its source allows."""
    source = chart.source
    if source.is_oci:
        variants, ca_file = _oci_variants(chart, version, source)
        private = not source.oci_registry.is_public
        ca_pem = source.oci_registry.ca_certificate if ca_file else ""
    else:
        variants, ca_file = _helm_variants(chart, version, source)
        private = source.helm.is_private
        ca_pem = source.helm.ca_certificate if ca_file else ""
    named = []
    for index, variant in enumerate(variants):
        commands = tuple(
            replace(
                c,
                element_id=f"helm-{c.key}"
                if index == 0 and c.key in ("install", "pull")
                else f"helm-{variant.key}-{c.key}",
            )
            for c in variant.commands
        )
        named.append(replace(variant, commands=commands))
    return InstallGuide(tuple(named), ca_file, ca_pem, needs_credentials=private)
