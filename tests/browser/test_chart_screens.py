"""Chart sources and the Chart Store in a real browser: nginx Helm repository, OCI registry."""

import pytest
from playwright.sync_api import expect

from charts.models import Chart, SyncRun
from tests.browser.test_registry_screens import choose
from tests.chartkit import helm_index, make_chart_archive
from tests.charts.helpers import push_versions, unique

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_add_sources_sync_search_and_read_a_charts_values(
    signed_in,
    live_server,
    helm_repo,
    chart_registry,
    screenshot,
):
    page = signed_in
    redis = make_chart_archive(
        "redis", "17.3.0", description="In-memory data store", values="architecture: replication\n"
    )
    helm_repo.put("charts/redis-17.3.0.tgz", redis)
    helm_repo.write_index(
        helm_index(
            [
                {
                    "name": "redis",
                    "version": "17.3.0",
                    "archive": redis,
                    "description": "In-memory data store",
                }
            ]
        )
    )
    repository = unique("charts/webapp")
    push_versions(
        chart_registry, repository, "webapp", ["1.0.0", "1.1.0-rc.1"], description="Team web app"
    )

    # A classic Helm repository: test the connection, then save; the first sync runs.
    page.get_by_role("button", name="Global Configurations").click()
    page.get_by_role("link", name="Chart Repositories").click()
    page.get_by_role("link", name="Add Helm repository").first.click()
    page.get_by_label("Name", exact=True).fill("bitnami-mirror")
    page.get_by_label("Repository URL").fill(helm_repo.url)
    choose(page, page.get_by_label("Allow insecure connection"))
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator(".connection-result")).to_contain_text("1 charts, 1 versions")
    screenshot("helm-repository-tested")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("tr[data-repository=bitnami-mirror]")).to_contain_text("Synced")
    screenshot("helm-repository-list")

    # An OCI registry used as a chart repository.
    page.goto(f"{live_server.url}/global/registries/add/")
    choose(page, page.get_by_label("Registry provider"), "other")
    choose(page, page.get_by_label("Public Registry"))
    page.get_by_label("Name", exact=True).fill("oci-charts")
    page.get_by_label("Registry URL").fill(chart_registry.host)
    choose(page, page.get_by_label("Allow insecure connection"))
    choose(page, page.get_by_label("Use as chart repository"))
    page.get_by_role("textbox", name="List of repositories").fill(repository)
    page.get_by_role("button", name="Save").click()
    row = page.locator("tr[data-registry=oci-charts]")
    expect(row).to_contain_text(repository)
    expect(row).to_contain_text("Synced")

    # Its source page: Sync now adds a run to the table in place.
    row.get_by_role("link", name=repository).click()
    expect(page.locator("#run-table tbody tr")).to_have_count(1)
    page.get_by_role("button", name="Sync now").click()
    expect(page.locator("#run-table tr.run-succeeded")).to_have_count(2)
    assert SyncRun.objects.filter(source__repository=repository).count() == 2
    screenshot("source-runs")

    # The Chart Store: both sources, search, open a chart, read its values.
    page.locator("nav.navbar").get_by_role("link", name="Chart Store").click()
    expect(page.locator(".chart-card")).to_have_count(2)
    screenshot("chart-store")
    with page.expect_response(lambda r: "q=memory" in r.url):
        page.get_by_placeholder("Search by name, description or keyword").fill("memory")
    expect(page.locator(".chart-card")).to_have_count(1)
    page.locator(".chart-card[data-chart=redis]").click()
    expect(page.locator("#helm-install")).to_contain_text(
        f"helm install redis redis --repo {helm_repo.url} --version 17.3.0"
    )
    expect(page.locator(".chart-readme")).to_be_visible()
    expect(page.locator(".chart-readme h1")).to_have_text("redis")
    page.get_by_role("tab", name="values.yaml").click()
    expect(page.locator(".chart-values")).to_be_visible()
    expect(page.locator(".chart-values")).to_contain_text("architecture: replication")
    screenshot("chart-page-values")

    # The OCI chart: versions in SemVer order, the pre-release marked, each with its
    # trust status (checked after the sync: these carry no signature).
    page.locator("nav.navbar").get_by_role("link", name="Chart Store").click()
    page.locator(".chart-card[data-chart=webapp]").click()
    expect(page.locator(".version-list a")).to_have_text(
        ["1.1.0-rc.1 pre-release Unsigned 1.0.0", "1.0.0 Unsigned 1.0.0"]
    )
    expect(page.locator("#helm-pull")).to_contain_text(f"oci://{chart_registry.host}/{repository}")
    assert Chart.objects.get(name="webapp").latest_version == "1.0.0"
    screenshot("oci-chart-page")


def test_a_chart_page_says_it_is_reading_the_files_and_updates_itself(
    signed_in, live_server, helm_repo, broker, screenshot
):
    from charts.files import read_pending_files
    from tests.charts.helpers import helm_source, sync

    broker.eager = False  # no worker yet: the page must not fetch the archive itself
    archive = make_chart_archive("nginx", "2.0.0", readme="# nginx\n\nA web server.\n")
    helm_repo.put("charts/nginx-2.0.0.tgz", archive)
    helm_repo.write_index(helm_index([{"name": "nginx", "version": "2.0.0", "archive": archive}]))
    sync(helm_source(helm_repo))
    page = signed_in
    page.goto(f"{live_server.url}/charts/{Chart.objects.get(name='nginx').pk}/")

    expect(page.locator("#chart-files")).to_contain_text("Reading the chart's README")
    assert not any(".tgz" in line for line in helm_repo.access_log_lines())
    screenshot("chart-files-reading")

    read_pending_files()  # a worker reads it; the page polls and shows it

    expect(page.locator(".chart-readme")).to_contain_text("A web server.")
    screenshot("chart-files-read")


SHOTS = "/work/notes/shots"


def shot(page, name: str) -> None:
    page.screenshot(path=f"{SHOTS}/store-{name}.png", full_page=True)


def test_a_source_pages_chart_count_follows_the_run_that_ends(
    signed_in, live_server, helm_repo, broker
):
    from charts.sync import run_sync
    from tests.charts.helpers import helm_source

    page = signed_in
    helm_repo.write_index(helm_index([]))
    source = helm_source(helm_repo)
    page.goto(f"{live_server.url}/global/chart-sources/{source.pk}/")
    expect(page.locator("#chart-count")).to_have_text("0 charts in the store")

    archive = make_chart_archive("redis", "1.0.0")
    helm_repo.put("charts/redis-1.0.0.tgz", archive)
    helm_repo.write_index(helm_index([{"name": "redis", "version": "1.0.0", "archive": archive}]))
    broker.eager = False  # the run waits for a worker: the page polls meanwhile
    page.get_by_role("button", name="Sync now").click()
    expect(page.locator("#run-table tr.run-queued")).to_have_count(1)
    run_sync(SyncRun.objects.get(source=source, status="queued").pk)  # a worker runs it

    expect(page.locator("#run-table tr.run-succeeded")).to_have_count(2)  # the first, and this
    expect(page.locator("#chart-count")).to_have_text("1 chart in the store")
    shot(page, "source-count-after-run")


def test_store_cards_mark_a_chart_that_has_only_pre_releases(signed_in, live_server, helm_repo):
    from tests.charts.helpers import helm_source

    entries = []
    for name, version in (("nightly", "0.2.0-alpha.3"), ("steady", "1.4.0")):
        archive = make_chart_archive(name, version)
        helm_repo.put(f"charts/{name}-{version}.tgz", archive)
        entries.append({"name": name, "version": version, "archive": archive})
    helm_repo.write_index(helm_index(entries))
    helm_source(helm_repo)  # its first sync runs as it is queued
    page = signed_in
    page.goto(f"{live_server.url}/charts/")
    expect(page.locator(".chart-card[data-chart=nightly] [data-badge=prerelease]")).to_have_text(
        "pre-release"
    )
    expect(page.locator(".chart-card[data-chart=steady] [data-badge=prerelease]")).to_have_count(0)
    shot(page, "store-prerelease-card")


README = """\ufeff# webapp

A **team** web app. See [the docs](https://docs.example.org/webapp).

![Architecture](https://cdn.example.org/arch.png)

## Install

1. Add the repository
2. Install the chart

```yaml
replicaCount: 2
```

| Parameter | Description | Default |
|-----------|-------------|--------:|
| `replicaCount` | Pods to run | `1` |
| `image.tag` | Image tag | `""` |

<script>document.title = "pwned"</script>
<img src="https://cdn.example.org/raw.png" onerror="document.title='pwned'">
[click me](javascript:document.title='pwned')
"""


def test_a_readme_renders_as_markdown_and_the_page_loads_nothing_from_outside(
    signed_in, live_server, helm_repo
):
    from tests.charts.helpers import helm_source

    archive = make_chart_archive("webapp", "1.0.0", readme=README)
    helm_repo.put("charts/webapp-1.0.0.tgz", archive)
    helm_repo.write_index(helm_index([{"name": "webapp", "version": "1.0.0", "archive": archive}]))
    helm_source(helm_repo)  # synced, and its files read, as the work is queued
    page = signed_in
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"{live_server.url}/charts/{Chart.objects.get(name='webapp').pk}/")

    readme = page.locator(".chart-readme")
    expect(readme.locator("h1")).to_have_text("webapp")
    expect(readme.locator("h2")).to_have_text("Install")
    expect(readme.locator("ol li")).to_have_count(2)
    expect(readme.locator("pre code")).to_have_text("replicaCount: 2")
    expect(readme.locator("table th")).to_have_text(["Parameter", "Description", "Default"])
    expect(readme.locator("table tbody tr")).to_have_count(2)
    image = readme.get_by_role("link", name="Image: Architecture")
    expect(image).to_have_attribute("href", "https://cdn.example.org/arch.png")
    expect(readme.get_by_role("link", name="the docs")).to_have_attribute(
        "rel", "noopener noreferrer nofollow"
    )
    expect(readme.locator("img, script")).to_have_count(0)
    expect(readme.get_by_role("link", name="click me")).to_have_count(0)
    assert page.title() != "pwned"
    page.wait_for_load_state("networkidle")
    outside = [url for url in requested if not url.startswith(live_server.url)]
    assert outside == []
    shot(page, "readme-markdown")


def test_dependencies_schema_and_values_compared_between_versions(
    signed_in, live_server, helm_repo
):
    from charts.models import ChartVersion
    from tests.charts.helpers import helm_source

    schema = b'{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"replicaCount":{"type":"integer","minimum":1}}}'
    old_values = (
        "replicaCount: 1\nimage:\n  repository: team/web\n  tag: 1.0.0\nservice:\n  port: 80\n"
    )
    new_values = "replicaCount: 2\nimage:\n  repository: team/web\n  tag: 2.0.0\nservice:\n  port: 80\n  type: ClusterIP\n"
    entries = []
    redis = make_chart_archive("redis", "17.3.0")
    helm_repo.put("charts/redis-17.3.0.tgz", redis)
    entries.append({"name": "redis", "version": "17.3.0", "archive": redis})
    dependencies = [
        {"name": "redis", "version": "~17.3", "repository": helm_repo.url},
        {"name": "common", "version": "2.x.x", "repository": "oci://registry.example/charts"},
    ]
    for version, values in (("1.0.0", old_values), ("2.0.0", new_values)):
        extra = {"values.schema.json": schema} if version == "2.0.0" else {}
        archive = make_chart_archive("web", version, values=values, extra=extra)
        helm_repo.put(f"charts/web-{version}.tgz", archive)
        entries.append(
            {"name": "web", "version": version, "archive": archive, "dependencies": dependencies}
        )
    helm_repo.write_index(helm_index(entries))
    helm_source(helm_repo)  # synced and read as queued
    web = Chart.objects.get(name="web")
    page = signed_in
    page.goto(f"{live_server.url}/charts/{web.pk}/")

    deps = page.locator(".chart-dependencies li")
    expect(deps).to_have_count(2)
    expect(deps.nth(0).get_by_role("link", name="redis")).to_have_attribute(
        "href", f"/charts/{Chart.objects.get(name='redis').pk}/"
    )
    expect(deps.nth(0)).to_contain_text("~17.3")
    expect(deps.nth(1)).to_contain_text("Not in the Chart Store.")
    page.get_by_role("tab", name="values.schema.json").click()
    expect(page.locator(".chart-schema")).to_contain_text('"minimum": 1')
    shot(page, "chart-dependencies-schema")

    page.get_by_role("tab", name="values.yaml").click()
    page.get_by_role("link", name="Compare with another version").click()
    expect(page.locator("#diff-from")).to_have_value("1.0.0")
    expect(page.locator("#diff-to")).to_have_value("2.0.0")
    expect(page.locator("#diff-table .diff-removed")).to_have_count(2)
    expect(page.locator("#diff-table .diff-added")).to_have_count(3)
    expect(page.locator(".diff-summary")).to_contain_text("+3 added")
    shot(page, "values-diff-unified")

    page.get_by_text("Side by side").click()
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("#diff-table.diff-split")).to_be_visible()
    expect(page.locator("#diff-table tr", has_text="tag: 1.0.0")).to_contain_text("tag: 2.0.0")
    shot(page, "values-diff-split")

    # A version whose files are not read yet: said so; "Read now" (a POST) reads it.
    ChartVersion.objects.filter(chart=web, version="1.0.0").update(
        files_read_at=None, values_yaml=""
    )
    page.reload()
    expect(page.locator(".unread-version")).to_contain_text("values.yaml of 1.0.0 is not read yet")
    expect(page.locator("#diff-table")).to_have_count(0)
    shot(page, "values-diff-not-read")
    page.get_by_role("button", name="Read now").click()
    expect(page.locator("#diff-table.diff-split")).to_be_visible()
    expect(page.locator(".unread-version")).to_have_count(0)


def test_install_lines_for_each_way_to_reach_a_registry_each_copied_by_its_button(
    signed_in, live_server, chart_registry
):
    from tests.charts.helpers import oci_registry, source_of, sync

    repository = f"{unique('charts/copy')}/webapp"
    push_versions(chart_registry, repository, "webapp", ["2.1.0"])
    sync(source_of(oci_registry(chart_registry, [repository]), repository))
    page = signed_in
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(f"{live_server.url}/charts/{Chart.objects.get(name='webapp').pk}/")

    ref = f"oci://{chart_registry.host}/{repository}"
    plain = page.locator("[data-variant=plain-http]")
    expect(plain).to_contain_text("If the registry speaks plain HTTP")
    expect(page.locator("#helm-install")).to_have_text(
        f"helm install webapp {ref} --version 2.1.0 --plain-http"
    )
    expect(page.locator("#helm-insecure-tls-pull")).to_have_text(
        f"helm pull {ref} --version 2.1.0 --insecure-skip-tls-verify"
    )
    plain.locator("[data-command=install] .copy-button").click()
    expect(plain.locator("[data-command=install] .copy-button")).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == f"helm install webapp {ref} --version 2.1.0 --plain-http"
    shot(page, "install-lines-copied")


def test_a_private_ca_repository_shows_the_ca_to_save_and_both_install_forms(
    signed_in, live_server, ca
):
    from django.utils import timezone

    from charts.models import ChartSource, ChartVersion, HelmRepository

    repository = HelmRepository.objects.create(
        name="internal", url="https://charts.internal.example/stable", tls_mode="ca",
        ca_certificate=ca.cert_pem,
    )  # fmt: skip
    source = ChartSource.objects.create(kind="helm", helm_repository=repository)
    chart = Chart.objects.create(source=source, name="billing", latest_version="3.0.1")
    ChartVersion.objects.create(
        chart=chart, version="3.0.1", fingerprint="x", files_read_at=timezone.now()
    )
    page = signed_in
    page.goto(f"{live_server.url}/charts/{chart.pk}/")

    url = "https://charts.internal.example/stable"
    expect(page.locator("#helm-install")).to_have_text(
        f"helm install billing billing --repo {url} --version 3.0.1 --ca-file internal-ca.crt"
    )
    expect(page.locator("#helm-repo-add-repo-add")).to_have_text(
        f"helm repo add internal {url} --ca-file internal-ca.crt"
    )
    expect(page.locator("#helm-repo-add-install-repo")).to_have_text(
        "helm install billing internal/billing --version 3.0.1"
    )
    page.locator(".helm-ca summary").click()
    expect(page.locator("#helm-ca-pem")).to_contain_text("-----BEGIN CERTIFICATE-----")
    shot(page, "install-lines-private-ca")
