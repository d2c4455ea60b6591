"""Wharf's own Helm chart (``deploy/chart/wharf``), checked with Helm's own code.

``helm-python-sdk`` binds Helm v4's Go SDK: the chart is linted, rendered offline for
several value sets (as ``helm template`` would, ``lookup`` finding nothing) and packaged,
and the manifests are read back as YAML. The last test pushes the packaged chart into
Wharf and finds it in the Chart Store.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes.client
import pytest
import yaml
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.urls import reverse
from kmock import KubernetesEmulator, Server

from charts.models import Chart, ChartPush
from tests.charts.helpers import oci_registry, source_of, unique
from tests.clusters.emulator import EmulatorLoop, FakeCluster

CHART = Path(__file__).resolve().parents[2] / "deploy" / "chart" / "wharf"
RELEASE = "prod"
NAMESPACE = "wharf"
FULLNAME = "prod-wharf"
QUEUES = ["sync", "push", "reconcile", "celery"]

EXISTING_SECRET = {
    "existingSecret": "wharf-keys",
    "secretKeys": {
        "secretKey": "django-key",
        "encryptionKeys": "fernet",
        "adminPassword": "admin",
        "metricsToken": "scrape",
    },
}
EXTERNAL_SERVICES = {
    "database": {
        "host": "pg.db.svc",
        "port": 6432,
        "name": "wharf_prod",
        "user": "wharf_app",
        "existingSecret": "pg-credentials",
        "existingSecretPasswordKey": "pg-password",
        "options": "sslmode=require",
    },
    "redis": {
        "host": "redis.cache.svc",
        "db": 3,
        "tls": True,
        "existingSecret": "redis-credentials",
        "existingSecretPasswordKey": "redis-password",
    },
}
INGRESS_TLS = {
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "hosts": [{"host": "wharf.corp.example", "paths": [{"path": "/", "pathType": "Prefix"}]}],
        "tls": [{"secretName": "wharf-tls", "hosts": ["wharf.corp.example"]}],
    }
}
SERVICE_MONITOR = {"metrics": {"auth": {"enabled": True}, "serviceMonitor": {"enabled": True}}}
QUEUE_WORKERS = {
    "workers": [
        {"name": "reconcile", "queues": ["reconcile"], "replicas": 2},
        {"name": "sync", "queues": ["sync", "push"], "resources": {"limits": {"memory": "2Gi"}}},
    ]
}

VALUE_SETS = {
    "defaults": None,
    "existing-secret": EXISTING_SECRET,
    "external-services": {**EXISTING_SECRET, **EXTERNAL_SERVICES},
    "ingress-tls": INGRESS_TLS,
    "service-monitor": SERVICE_MONITOR,
    "queue-workers": QUEUE_WORKERS,
}


# --- helpers ---------------------------------------------------------------------------


def render(values: dict[str, Any] | None = None) -> list[dict]:
    """Every manifest the chart renders for ``values`` (NOTES.txt left out), parsed."""
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    manifests = []
    for path, text in rendered.items():
        if path.endswith("NOTES.txt"):
            continue
        manifests.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return manifests


def notes(values: dict[str, Any] | None = None) -> str:
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return rendered["wharf/templates/NOTES.txt"]


def of_kind(manifests: list[dict], kind: str) -> dict[str, dict]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def one(manifests: list[dict], kind: str, name: str) -> dict:
    found = of_kind(manifests, kind)
    assert name in found, f"no {kind} {name}; there are {sorted(found)}"
    return found[name]


def pod_specs(manifests: list[dict]) -> dict[str, dict]:
    """The pod spec of every Deployment and Job, by the workload's name."""
    return {
        m["metadata"]["name"]: m["spec"]["template"]["spec"]
        for m in manifests
        if m["kind"] in ("Deployment", "Job")
    }


def container(manifests: list[dict], deployment: str) -> dict:
    (only,) = one(manifests, "Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return only


def env_of(c: dict) -> dict[str, dict]:
    """A container's env entries by name: {"value": …} or {"valueFrom": …}."""
    return {entry["name"]: entry for entry in c["env"]}


def secret_files(pod: dict) -> dict[str, tuple[str, str]]:
    """What the projected Secret volume mounts: file name -> (Secret name, key)."""
    (volume,) = [v for v in pod["volumes"] if v["name"] == "secrets"]
    files = {}
    for source in volume["projected"]["sources"]:
        for item in source["secret"]["items"]:
            files[item["path"]] = (source["secret"]["name"], item["key"])
    return files


def unknown_fields(data: Any, type_name: str, path: str) -> list[str]:
    """Paths in ``data`` that the Kubernetes API type ``type_name`` has no field for.

    Read from the official client's models (their ``attribute_map``/``openapi_types``), so
    a misspelt or misplaced key in a template (``readOnlyRootFileSystem``, a probe field
    one level too deep) is found here rather than by an API server.
    """
    scalars = ("str", "int", "bool", "float", "bytes", "object", "datetime")
    if data is None or type_name in scalars:
        return []
    if type_name.startswith(("list[", "List[")):
        inner = type_name[5:-1]
        return [
            p for i, item in enumerate(data) for p in unknown_fields(item, inner, f"{path}[{i}]")
        ]
    if type_name.startswith(("dict(", "Dict[")):
        inner = type_name.split(",", 1)[1][:-1].strip()
        return [p for k, v in data.items() for p in unknown_fields(v, inner, f"{path}.{k}")]
    model = getattr(kubernetes.client, type_name)
    fields = {
        json_name: model.openapi_types[attr] for attr, json_name in model.attribute_map.items()
    }
    problems = []
    for key, value in data.items():
        if key not in fields:
            problems.append(f"{path}.{key}")
        else:
            problems.extend(unknown_fields(value, fields[key], f"{path}.{key}"))
    return problems


API_TYPES = {
    ("apps/v1", "Deployment"): "V1Deployment",
    ("batch/v1", "Job"): "V1Job",
    ("v1", "Service"): "V1Service",
    ("v1", "Secret"): "V1Secret",
    ("networking.k8s.io/v1", "Ingress"): "V1Ingress",
}


# --- lint, schema, package -------------------------------------------------------------


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_chart_lints_without_errors(values):
    report = helm.lint(CHART, values, kube_version="v1.30.0")

    assert report["total_charts_linted"] == 1
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []  # no warnings either


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_every_manifest_uses_only_fields_its_kubernetes_api_type_has(values):
    manifests = render(values)

    kinds = {(m["apiVersion"], m["kind"]) for m in manifests}
    # The Prometheus Operator's CRDs: not in the Kubernetes client's models.
    crds = {
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("monitoring.coreos.com/v1", "PodMonitor"),
    }
    assert kinds - set(API_TYPES) <= crds
    for m in manifests:
        type_name = API_TYPES.get((m["apiVersion"], m["kind"]))
        if type_name:
            assert unknown_fields(m, type_name, m["kind"]) == [], m["metadata"]["name"]


def test_schema_rejects_replicas_given_as_a_word():
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(chart.values)  # the defaults pass
        with pytest.raises(helm.HelmValuesError, match="/web/replicas"):
            chart.validate_schema({"web": {"replicas": "two"}})

    report = helm.lint(CHART, {"web": {"replicas": "two"}})
    assert any("/web/replicas" in error for error in report["errors"])


def test_schema_rejects_an_unknown_queue_and_a_misspelt_key():
    with helm.Chart.load(CHART) as chart:
        with pytest.raises(helm.HelmValuesError, match="/workers/0/queues/0"):
            chart.validate_schema({"workers": [{"name": "w", "queues": ["reconciles"]}]})
        with pytest.raises(helm.HelmValuesError, match="existingSecrets"):
            chart.validate_schema({"existingSecrets": "typo"})


def test_chart_packages_into_an_archive_helm_loads_back(tmp_path):
    archive = helm.package(CHART, destination=tmp_path)

    assert Path(archive).name == "wharf-0.1.0.tgz"
    with helm.Chart.load(archive) as packaged:
        assert packaged.metadata["appVersion"] == "0.1.0"
        assert packaged.schema is not None
        names = {t["name"] for t in packaged.templates}
    assert {"templates/deployment-web.yaml", "templates/job-migrate.yaml"} <= names
    assert helm.digest(archive).startswith("sha256:")


# --- the web Deployment and every pod ----------------------------------------------------


def test_web_deployment_runs_the_image_at_the_charts_app_version_with_the_web_entry_point():
    web = container(render(), f"{FULLNAME}-web")

    assert web["image"] == "wharf:0.1.0"
    assert web["args"] == ["web"]
    assert env_of(web)["PORT"]["value"] == "8000"
    assert web["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]


def test_image_repository_and_tag_come_from_values():
    values = {"image": {"repository": "registry.corp.example/wharf", "tag": "1.2.3"}}

    for name, pod in pod_specs(render(values)).items():
        for c in pod["containers"] + pod.get("initContainers", []):
            assert c["image"] == "registry.corp.example/wharf:1.2.3", name


def test_web_probes_ask_healthz_for_liveness_and_readyz_for_readiness_on_the_web_port():
    web = container(render(), f"{FULLNAME}-web")

    assert web["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    # Kubelet's probes send the pod's IP as Host: Django must answer to it.
    assert env_of(web)["ALLOWED_HOSTS"]["value"].endswith(",$(POD_IP)")
    assert env_of(web)["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    names = [e["name"] for e in web["env"]]
    assert names.index("POD_IP") < names.index("ALLOWED_HOSTS")  # $(POD_IP) expands


def test_service_sends_its_port_to_the_web_pods():
    manifests = render()
    service = one(manifests, "Service", FULLNAME)
    web = one(manifests, "Deployment", f"{FULLNAME}-web")

    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"] == web["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "web"


def test_every_pod_runs_non_root_on_a_read_only_root_file_system_without_capabilities():
    pods = pod_specs(render(QUEUE_WORKERS))

    assert set(pods) == {
        f"{FULLNAME}-{name}"
        for name in ("web", "worker", "worker-reconcile", "worker-sync", "beat", "migrate")
    }
    for name, pod in pods.items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == 10001, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        for c in pod["containers"] + pod.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True, name
            assert sc["runAsUser"] == 10001, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
            mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
            writable = {"/var/lib/wharf": "var", "/tmp": "tmp"}
            if not name.endswith(("-beat", "-migrate")):  # web and every worker
                writable["/run/wharf-metrics"] = "metrics"
            assert mounts == {**writable, "/run/secrets/wharf": "secrets"}, name
            assert all(m.get("readOnly") for m in c["volumeMounts"] if m["name"] == "secrets")
            assert env_of(c)["WHARF_VAR_DIR"]["value"] == "/var/lib/wharf"
            assert env_of(c)["DEBUG"]["value"] == "0"
        volumes = {v["name"]: v for v in pod["volumes"]}
        for volume in writable.values():
            assert volumes[volume] == {"name": volume, "emptyDir": {}}, name


def test_resources_placement_and_pod_annotations_reach_the_pods():
    values = {
        "web": {
            "resources": {"requests": {"cpu": "1"}},
            "nodeSelector": {"pool": "web"},
            "tolerations": [{"key": "dedicated", "operator": "Exists"}],
            "affinity": {"podAntiAffinity": {}},
            "podAnnotations": {"team": "platform"},
            "terminationGracePeriodSeconds": 45,
        },
        "podAnnotations": {"everyone": "yes"},
    }
    web = one(render(values), "Deployment", f"{FULLNAME}-web")["spec"]["template"]
    pod = web["spec"]

    # Helm merges given values into the defaults: the memory request and limit stay.
    assert pod["containers"][0]["resources"] == {
        "requests": {"cpu": "1", "memory": "256Mi"},
        "limits": {"memory": "512Mi"},
    }
    assert pod["nodeSelector"] == {"pool": "web"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert pod["affinity"] == {"podAntiAffinity": {}}
    assert pod["terminationGracePeriodSeconds"] == 45
    assert web["metadata"]["annotations"]["team"] == "platform"
    assert web["metadata"]["annotations"]["everyone"] == "yes"


def test_pods_roll_when_a_setting_changes_and_only_then():
    def checksums(values):
        return {
            name: m["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            for name, m in of_kind(render(values), "Deployment").items()
        }

    before = checksums(EXISTING_SECRET)
    again = checksums(EXISTING_SECRET)
    changed = checksums({**EXISTING_SECRET, "wharf": {"logLevel": "DEBUG"}})
    other_key = checksums({**EXISTING_SECRET, "secretKeys": {"secretKey": "rotated"}})

    assert before == again
    assert len(set(before.values())) == 1  # one configuration for every process
    assert set(changed.values()).isdisjoint(before.values())
    assert set(other_key.values()).isdisjoint(before.values())


# --- keys and passwords ------------------------------------------------------------------


def test_without_existing_secret_the_chart_generates_keys_in_a_hook_secret_made_first():
    manifests = render()
    secret = one(manifests, "Secret", FULLNAME)
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}

    assert set(data) == {"secret-key", "encryption-keys", "admin-password"}
    assert len(data["secret-key"]) >= 50
    Fernet(data["encryption-keys"])  # a valid Fernet key, or this raises
    assert len(data["admin-password"]) >= 20
    annotations = secret["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    job = one(manifests, "Job", f"{FULLNAME}-migrate")["metadata"]["annotations"]
    assert int(annotations["helm.sh/hook-weight"]) < int(job["helm.sh/hook-weight"])
    # Offline, lookup finds nothing: a second render makes new keys (in a cluster an
    # upgrade keeps them: test_an_upgrade_keeps_the_keys_already_in_the_cluster).
    assert one(render(), "Secret", FULLNAME)["data"] != secret["data"]


class OpenCluster(FakeCluster):
    """An emulated API server that asks for no token (Helm sent none to a plain-HTTP one)."""

    async def _handle(self, request):
        return await KubernetesEmulator._handle(self, request)


@pytest.fixture
def cluster_with_keys():
    """An emulated cluster already holding the chart's Secret from an earlier install."""
    loop = EmulatorLoop()

    async def start() -> OpenCluster:
        cluster = OpenCluster()
        await cluster.__aenter__()
        cluster.server = Server(cluster)
        await cluster.server.__aenter__()
        return cluster

    cluster = loop._run(start())
    loop.running.append(cluster)
    cluster.add_namespace(NAMESPACE)
    kept = {
        "secret-key": "kept-django-secret-key",
        "encryption-keys": Fernet.generate_key().decode(),
        "admin-password": "kept-admin-password",
    }
    data = {k: base64.b64encode(v.encode()).decode() for k, v in kept.items()}
    cluster.put_secret(NAMESPACE, FULLNAME, {"type": "Opaque", "data": data})
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": cluster.url}}],
        "users": [{"name": "anyone", "user": {}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "anyone"}}],
        "current-context": "emulator",
    }
    try:
        yield yaml.safe_dump(kubeconfig), kept
    finally:
        loop.close()


def test_an_upgrade_keeps_the_keys_already_in_the_cluster(cluster_with_keys):
    kubeconfig, kept = cluster_with_keys

    with (
        helm.Config(kubeconfig_content=kubeconfig, namespace=NAMESPACE) as config,
        helm.Chart.load(CHART) as chart,
    ):
        # As `helm upgrade` renders: lookup reads the live Secret.
        rendered = config.render(chart, {}, name=RELEASE, namespace=NAMESPACE, is_upgrade=True)
    secret = yaml.safe_load(rendered["wharf/templates/secret.yaml"])

    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == kept


def test_keys_given_in_values_are_used_as_they_are():
    key = Fernet.generate_key().decode()
    values = {"secret": {"secretKey": "k" * 60, "encryptionKeys": key, "adminPassword": "pw-1"}}

    data = one(render(values), "Secret", FULLNAME)["data"]

    assert base64.b64decode(data["encryption-keys"]).decode() == key
    assert base64.b64decode(data["secret-key"]).decode() == "k" * 60
    assert base64.b64decode(data["admin-password"]).decode() == "pw-1"


def test_generated_keys_are_said_to_be_for_trying_wharf_out():
    assert "for trying Wharf out" in notes()
    assert "for trying Wharf out" not in notes(EXISTING_SECRET)


def test_existing_secret_replaces_the_charts_secret_and_its_keys_are_read_from_files():
    manifests = render(EXISTING_SECRET)

    assert of_kind(manifests, "Secret") == {}
    for name, pod in pod_specs(manifests).items():
        files = secret_files(pod)
        assert files["secret-key"] == ("wharf-keys", "django-key"), name
        assert files["encryption-keys"] == ("wharf-keys", "fernet"), name
        for c in pod["containers"]:
            env = env_of(c)
            assert env["SECRET_KEY_FILE"]["value"] == "/run/secrets/wharf/secret-key"
            assert env["WHARF_ENCRYPTION_KEYS_FILE"]["value"] == (
                "/run/secrets/wharf/encryption-keys"
            )
            assert "SECRET_KEY" not in env


def test_only_the_migration_job_gets_the_admin_password():
    manifests = render(EXISTING_SECRET)
    pods = pod_specs(manifests)

    job = pods.pop(f"{FULLNAME}-migrate")
    assert secret_files(job)["admin-password"] == ("wharf-keys", "admin")
    (admin,) = job["containers"]
    assert env_of(admin)["WHARF_ADMIN_PASSWORD_FILE"]["value"] == (
        "/run/secrets/wharf/admin-password"
    )
    for name, pod in pods.items():
        assert "admin-password" not in secret_files(pod), name


# --- external PostgreSQL and Redis ----------------------------------------------------------


def test_external_database_and_redis_take_their_passwords_from_their_secrets():
    manifests = render({**EXISTING_SECRET, **EXTERNAL_SERVICES})

    assert of_kind(manifests, "Secret") == {}
    for name in (f"{FULLNAME}-web", f"{FULLNAME}-worker", f"{FULLNAME}-beat"):
        env = env_of(container(manifests, name))
        assert env["WHARF_DATABASE_PASSWORD"]["valueFrom"] == {
            "secretKeyRef": {"name": "pg-credentials", "key": "pg-password"}
        }
        assert env["DATABASE_URL"]["value"] == (
            "postgres://wharf_app:$(WHARF_DATABASE_PASSWORD)@pg.db.svc:6432/wharf_prod"
            "?sslmode=require"
        )
        assert env["WHARF_REDIS_PASSWORD"]["valueFrom"] == {
            "secretKeyRef": {"name": "redis-credentials", "key": "redis-password"}
        }
        assert env["REDIS_URL"]["value"] == (
            "rediss://:$(WHARF_REDIS_PASSWORD)@redis.cache.svc:6379/3"
        )
        # Kubernetes expands $(NAME) only from variables defined earlier in the list.
        names = [e["name"] for e in container(manifests, name)["env"]]
        assert names.index("WHARF_DATABASE_PASSWORD") < names.index("DATABASE_URL")
        assert names.index("WHARF_REDIS_PASSWORD") < names.index("REDIS_URL")


def test_whole_urls_from_existing_secrets_are_mounted_as_files():
    values = {
        **EXISTING_SECRET,
        "database": {"existingSecret": "pg-credentials", "existingSecretUrlKey": "url"},
        "redis": {"existingSecret": "redis-credentials", "existingSecretUrlKey": "broker-url"},
    }
    manifests = render(values)
    web = one(manifests, "Deployment", f"{FULLNAME}-web")["spec"]["template"]["spec"]
    env = env_of(web["containers"][0])

    assert secret_files(web)["database-url"] == ("pg-credentials", "url")
    assert secret_files(web)["redis-url"] == ("redis-credentials", "broker-url")
    assert env["DATABASE_URL_FILE"]["value"] == "/run/secrets/wharf/database-url"
    assert env["REDIS_URL_FILE"]["value"] == "/run/secrets/wharf/redis-url"
    assert "DATABASE_URL" not in env
    assert "REDIS_URL" not in env


def test_passwords_given_in_values_go_into_the_charts_secret_never_into_a_pod_spec():
    values = {
        **EXISTING_SECRET,
        "database": {"password": "pg-Passw0rd-in-values"},
        "redis": {"url": "redis://:redis-Passw0rd-in-values@redis:6379/0"},
    }
    manifests = render(values)

    secret = one(manifests, "Secret", FULLNAME)
    assert set(secret["data"]) == {"database-password", "redis-url"}  # keys: existingSecret
    env = env_of(container(manifests, f"{FULLNAME}-web"))
    assert env["WHARF_DATABASE_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": FULLNAME, "key": "database-password"}
    }
    workloads = yaml.safe_dump([m for m in manifests if m["kind"] != "Secret"])
    assert "Passw0rd-in-values" not in workloads


# --- Ingress, ServiceMonitor ------------------------------------------------------------------


def test_no_ingress_is_rendered_unless_enabled():
    assert of_kind(render(), "Ingress") == {}
    assert of_kind(render({"ingress": {"enabled": False}}), "Ingress") == {}


def test_ingress_with_tls_routes_its_host_to_the_service_and_wharf_trusts_the_proxy():
    manifests = render(INGRESS_TLS)
    ingress = one(manifests, "Ingress", FULLNAME)

    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"secretName": "wharf-tls", "hosts": ["wharf.corp.example"]}]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "wharf.corp.example"
    (path,) = rule["http"]["paths"]
    assert path["backend"] == {"service": {"name": FULLNAME, "port": {"name": "http"}}}
    web = container(manifests, f"{FULLNAME}-web")
    env = env_of(web)
    assert "wharf.corp.example" in env["ALLOWED_HOSTS"]["value"].split(",")
    assert env["CSRF_TRUSTED_ORIGINS"]["value"] == "https://wharf.corp.example"
    assert env["WHARF_BEHIND_TLS_PROXY"]["value"] == "1"
    # Plain-HTTP probes say they came through the proxy, so Django does not redirect them.
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert web[probe]["httpGet"]["httpHeaders"] == [
            {"name": "X-Forwarded-Proto", "value": "https"}
        ]


def test_django_leaves_the_https_redirect_to_the_ingress_unless_asked():
    env = env_of(container(render(INGRESS_TLS), f"{FULLNAME}-web"))
    assert env["SECURE_SSL_REDIRECT"]["value"] == "0"  # Prometheus scrapes plain HTTP

    asked = {**INGRESS_TLS, "wharf": {"sslRedirect": True}}
    assert (
        env_of(container(render(asked), f"{FULLNAME}-web"))["SECURE_SSL_REDIRECT"]["value"] == "1"
    )


def test_behind_tls_proxy_can_be_turned_off_with_a_tls_ingress():
    values = {**INGRESS_TLS, "wharf": {"behindTlsProxy": False}}
    web = container(render(values), f"{FULLNAME}-web")

    assert env_of(web)["WHARF_BEHIND_TLS_PROXY"]["value"] == "0"
    assert "httpHeaders" not in web["readinessProbe"]["httpGet"]


def test_no_service_monitor_is_rendered_unless_enabled():
    assert of_kind(render(), "ServiceMonitor") == {}


def test_service_monitor_scrapes_metrics_on_the_web_port_with_the_bearer_token_secret():
    manifests = render({**EXISTING_SECRET, **SERVICE_MONITOR})
    monitor = one(manifests, "ServiceMonitor", FULLNAME)
    service = one(manifests, "Service", FULLNAME)

    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http"
    assert endpoint["path"] == "/metrics"
    assert endpoint["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": "wharf-keys", "key": "scrape"},
    }
    web = one(manifests, "Deployment", f"{FULLNAME}-web")["spec"]["template"]["spec"]
    assert secret_files(web)["metrics-token"] == ("wharf-keys", "scrape")
    assert env_of(web["containers"][0])["WHARF_METRICS_TOKEN_FILE"]["value"] == (
        "/run/secrets/wharf/metrics-token"
    )


def test_service_monitor_without_auth_sends_no_token():
    values = {"metrics": {"serviceMonitor": {"enabled": True}}}
    manifests = render(values)

    (endpoint,) = one(manifests, "ServiceMonitor", FULLNAME)["spec"]["endpoints"]
    assert "authorization" not in endpoint
    assert "WHARF_METRICS_TOKEN_FILE" not in env_of(container(manifests, f"{FULLNAME}-web"))


def test_no_pod_monitor_is_rendered_unless_enabled():
    assert of_kind(render(), "PodMonitor") == {}
    assert of_kind(render({"metrics": {"auth": {"enabled": True}}}), "PodMonitor") == {}


def pod_labels(manifests: list[dict]) -> dict[str, dict[str, str]]:
    """The labels of every Deployment's and Job's pods, by the workload's name."""
    return {
        m["metadata"]["name"]: m["spec"]["template"]["metadata"]["labels"]
        for m in manifests
        if m["kind"] in ("Deployment", "Job")
    }


def test_pod_monitor_selects_every_worker_pod_and_no_other():
    manifests = render({**SERVICE_MONITOR, **QUEUE_WORKERS})
    monitor = one(manifests, "PodMonitor", FULLNAME)
    selector = monitor["spec"]["selector"]["matchLabels"].items()
    selected = {
        name for name, labels in pod_labels(manifests).items() if selector <= labels.items()
    }

    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor["spec"]["selector"]) == {"matchLabels"}
    assert selected == {
        f"{FULLNAME}-{name}" for name in ("worker", "worker-reconcile", "worker-sync")
    }
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    # Another release's workers carry another instance label.
    assert dict(selector)["app.kubernetes.io/instance"] == RELEASE


def test_pod_monitor_scrapes_the_workers_metrics_port_with_the_bearer_token_secret():
    values = {
        **EXISTING_SECRET,
        "metrics": {
            "auth": {"enabled": True},
            "serviceMonitor": {
                "enabled": True,
                "interval": "1m",
                "scrapeTimeout": "20s",
                "labels": {"release": "kube-prometheus"},
            },
        },
    }
    manifests = render(values)
    monitor = one(manifests, "PodMonitor", FULLNAME)

    assert monitor["spec"]["podMetricsEndpoints"] == [
        {
            "port": "metrics",
            "path": "/metrics",
            "interval": "1m",
            "scrapeTimeout": "20s",
            "authorization": {
                "type": "Bearer",
                "credentials": {"name": "wharf-keys", "key": "scrape"},
            },
        }
    ]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus"
    assert one(manifests, "ServiceMonitor", FULLNAME)["metadata"]["labels"]["release"] == (
        "kube-prometheus"
    )
    # The worker checks that same token.
    worker = one(manifests, "Deployment", f"{FULLNAME}-worker")["spec"]["template"]["spec"]
    assert secret_files(worker)["metrics-token"] == ("wharf-keys", "scrape")
    assert env_of(worker["containers"][0])["WHARF_METRICS_TOKEN_FILE"]["value"] == (
        "/run/secrets/wharf/metrics-token"
    )


def test_pod_monitor_without_auth_sends_no_token():
    manifests = render({"metrics": {"serviceMonitor": {"enabled": True}}})

    (endpoint,) = one(manifests, "PodMonitor", FULLNAME)["spec"]["podMetricsEndpoints"]
    assert "authorization" not in endpoint
    assert "WHARF_METRICS_TOKEN_FILE" not in env_of(container(manifests, f"{FULLNAME}-worker"))


def test_a_generated_metrics_token_is_kept_in_the_charts_secret():
    manifests = render(SERVICE_MONITOR)

    (endpoint,) = one(manifests, "ServiceMonitor", FULLNAME)["spec"]["endpoints"]
    assert endpoint["authorization"]["credentials"] == {"name": FULLNAME, "key": "metrics-token"}
    (pod_endpoint,) = one(manifests, "PodMonitor", FULLNAME)["spec"]["podMetricsEndpoints"]
    assert pod_endpoint["authorization"]["credentials"] == endpoint["authorization"]["credentials"]
    token = one(manifests, "Secret", FULLNAME)["data"]["metrics-token"]
    assert len(base64.b64decode(token)) >= 32


# --- workers, beat, the migration Job ----------------------------------------------------------


def test_the_default_worker_consumes_every_queue():
    worker = container(render(), f"{FULLNAME}-worker")

    assert worker["args"] == ["worker"]
    assert "WHARF_WORKER_QUEUES" not in env_of(worker)
    assert "livenessProbe" not in worker  # no HTTP server to ask


def test_each_extra_worker_is_its_own_deployment_on_its_queues():
    manifests = render(QUEUE_WORKERS)
    reconcile = one(manifests, "Deployment", f"{FULLNAME}-worker-reconcile")
    sync = one(manifests, "Deployment", f"{FULLNAME}-worker-sync")

    assert reconcile["spec"]["replicas"] == 2
    assert sync["spec"]["replicas"] == 1
    rec = reconcile["spec"]["template"]["spec"]["containers"][0]
    syn = sync["spec"]["template"]["spec"]["containers"][0]
    assert env_of(rec)["WHARF_WORKER_QUEUES"]["value"] == "reconcile"
    assert env_of(syn)["WHARF_WORKER_QUEUES"]["value"] == "sync,push"
    assert syn["resources"] == {"limits": {"memory": "2Gi"}}
    assert rec["resources"] == container(manifests, f"{FULLNAME}-worker")["resources"]
    # Selectors differ, so no Deployment adopts another's pods.
    selectors = [
        tuple(sorted(d["spec"]["selector"]["matchLabels"].items()))
        for d in of_kind(manifests, "Deployment").values()
    ]
    assert len(selectors) == len(set(selectors))


def test_worker_concurrency_is_passed_to_the_image_and_each_worker_may_set_its_own():
    values = {
        "worker": {"concurrency": 4},
        "workers": [
            {"name": "reconcile", "queues": ["reconcile"], "concurrency": 16},
            {"name": "sync", "queues": ["sync"]},
        ],
    }
    manifests = render(values)

    def concurrency(name):
        entry = env_of(container(manifests, f"{FULLNAME}-{name}")).get("WHARF_WORKER_CONCURRENCY")
        return entry and entry["value"]

    assert concurrency("worker") == "4"
    assert concurrency("worker-reconcile") == "16"
    assert concurrency("worker-sync") == "4"
    assert concurrency("worker") != concurrency("worker-reconcile")
    assert "WHARF_WORKER_CONCURRENCY" not in env_of(container(render(), f"{FULLNAME}-worker"))


def test_web_pods_count_metrics_of_every_gunicorn_worker_into_their_own_empty_dir():
    manifests = render()
    web = container(manifests, f"{FULLNAME}-web")

    assert env_of(web)["PROMETHEUS_MULTIPROC_DIR"]["value"] == "/run/wharf-metrics"
    assert {"name": "metrics", "mountPath": "/run/wharf-metrics"} in web["volumeMounts"]
    volumes = one(manifests, "Deployment", f"{FULLNAME}-web")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "metrics", "emptyDir": {}} in volumes


@pytest.mark.parametrize("worker", ["worker", "worker-reconcile", "worker-sync"])
def test_every_worker_serves_its_pools_metrics_on_the_metrics_port(worker):
    manifests = render(QUEUE_WORKERS)
    pod = one(manifests, "Deployment", f"{FULLNAME}-{worker}")["spec"]["template"]["spec"]
    (c,) = pod["containers"]

    assert c["ports"] == [{"name": "metrics", "containerPort": 9808, "protocol": "TCP"}]
    assert env_of(c)["WHARF_WORKER_METRICS_PORT"]["value"] == "9808"
    # The pool's processes count into one directory of their own pod (an emptyDir).
    assert env_of(c)["PROMETHEUS_MULTIPROC_DIR"]["value"] == "/run/wharf-metrics"
    assert {"name": "metrics", "mountPath": "/run/wharf-metrics"} in c["volumeMounts"]
    assert {"name": "metrics", "emptyDir": {}} in pod["volumes"]


def test_the_workers_metrics_port_and_directory_come_from_values():
    values = {"metrics": {"workerPort": 9100, "multiprocDir": "/run/counts"}, **QUEUE_WORKERS}
    manifests = render(values)

    for name in ("worker", "worker-reconcile", "worker-sync"):
        c = container(manifests, f"{FULLNAME}-{name}")
        assert c["ports"] == [{"name": "metrics", "containerPort": 9100, "protocol": "TCP"}]
        assert env_of(c)["WHARF_WORKER_METRICS_PORT"]["value"] == "9100"
        assert env_of(c)["PROMETHEUS_MULTIPROC_DIR"]["value"] == "/run/counts"
        assert {"name": "metrics", "mountPath": "/run/counts"} in c["volumeMounts"]


def test_schema_rejects_a_worker_metrics_port_out_of_range():
    with (
        helm.Chart.load(CHART) as chart,
        pytest.raises(helm.HelmValuesError, match="/metrics/workerPort"),
    ):
        chart.validate_schema({"metrics": {"workerPort": 70000}})


def test_beat_serves_and_counts_no_metrics():
    manifests = render(SERVICE_MONITOR)
    pod = one(manifests, "Deployment", f"{FULLNAME}-beat")["spec"]["template"]["spec"]
    (beat,) = pod["containers"]

    assert "ports" not in beat
    assert "WHARF_WORKER_METRICS_PORT" not in env_of(beat)
    assert "PROMETHEUS_MULTIPROC_DIR" not in env_of(beat)
    assert "metrics" not in {v["name"] for v in pod["volumes"]}
    assert "metrics" not in {m["name"] for m in beat["volumeMounts"]}


def test_a_grace_period_of_zero_is_kept():
    beat = one(
        render({"beat": {"terminationGracePeriodSeconds": 0}}), "Deployment", f"{FULLNAME}-beat"
    )

    assert beat["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 0


def test_without_the_all_queue_worker_every_queue_must_have_a_worker():
    partial = {"worker": {"enabled": False}, **QUEUE_WORKERS}  # nobody takes "celery"

    with pytest.raises(helm.HelmRenderError, match='consumes the queue "celery"'):
        render(partial)

    covering = {
        "worker": {"enabled": False},
        "workers": [{"name": "all", "queues": QUEUES}],
    }
    names = set(of_kind(render(covering), "Deployment"))
    assert names == {f"{FULLNAME}-web", f"{FULLNAME}-worker-all", f"{FULLNAME}-beat"}


def test_beat_runs_once_and_is_recreated_rather_than_rolled():
    beat = one(
        render({"web": {"replicas": 5}, "worker": {"replicas": 3}}),
        "Deployment",
        f"{FULLNAME}-beat",
    )

    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert beat["spec"]["template"]["spec"]["containers"][0]["args"] == ["beat"]


def test_migration_job_is_a_pre_install_and_pre_upgrade_hook_that_migrates_then_makes_the_admin():
    job = one(
        render({"migrate": {"backoffLimit": 1, "activeDeadlineSeconds": 300}}),
        "Job",
        f"{FULLNAME}-migrate",
    )

    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    assert job["spec"]["backoffLimit"] == 1
    assert job["spec"]["activeDeadlineSeconds"] == 300
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert [c["args"] for c in pod["initContainers"]] == [["migrate"]]
    assert [c["args"] for c in pod["containers"]] == [["manage", "ensure_admin"]]


# --- the packaged chart, pushed into Wharf -----------------------------------------------------


@pytest.fixture(scope="module")
def wharf_chart_registry(registry_factory):
    """A registry of its own to push Wharf's chart into (plain HTTP, htpasswd auth)."""
    return registry_factory(auth=("deploy", "deploy-Passw0rd"))


@pytest.mark.django_db(transaction=True)
def test_packaged_chart_pushed_into_wharf_shows_in_the_chart_store(
    wharf_chart_registry, broker, tmp_path, capsys, superuser, client
):
    prefix = unique("deploy")
    registry = oci_registry(wharf_chart_registry, [f"{prefix}/wharf"], push_helm=True)
    source = source_of(registry, f"{prefix}/wharf")
    broker.run_all()  # the sync the registry's save queued: nothing there yet
    archive = helm.package(CHART, destination=tmp_path)

    call_command("push_chart", registry.name, archive, "--prefix", prefix)

    assert ChartPush.objects.get().status == ChartPush.Status.SUCCEEDED
    assert f"oci://{wharf_chart_registry.host}/{prefix}/wharf:0.1.0" in capsys.readouterr().out
    broker.run_all()  # the sync the push queued, as a worker would run it
    chart = Chart.objects.get(source=source, name="wharf")
    assert chart.latest_version == "0.1.0"
    assert chart.app_version == "0.1.0"
    client.force_login(superuser)
    page = client.get(reverse("charts:chart_list"), {"q": "wharf"})
    assert chart in page.context["page"].object_list
    assert reverse("charts:chart_detail", args=[chart.pk]) in page.content.decode()
