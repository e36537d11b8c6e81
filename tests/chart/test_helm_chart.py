"""helm/bffgate with the real Helm engine (helm-python-sdk: Helm's Go SDK in a shared library,
no helm binary, no cluster, no network).

Rendered with the chart defaults plus the settings an install must give
(values-minimal.yaml) and with a full production values file (values-production.yaml);
every manifest is validated against the Kubernetes 1.30 OpenAPI schemas (strict: unknown
fields fail) with kubernetes-validate. The Prometheus Operator's ServiceMonitor and
PrometheusRule (monitoring.coreos.com/v1 CRDs) have no schema there: they are checked
field by field below instead.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from chart_support import CHART, HERE, REPO, Dockerfile
from joserfc.jwk import ECKey

from bffgate.config import (
    CookieSettings,
    LogSettings,
    OidcSettings,
    RedisSettings,
    RouteSettings,
    ServerSettings,
    SessionSettings,
    load_settings,
)
from bffgate.config.model import TelemetrySettings
from bffgate.metrics import Metrics

pytestmark = pytest.mark.chart

KUBE_VERSION = "1.30.0"
RELEASE, NAMESPACE = "shop-bff", "shop"
CRD_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}


def _load(name: str) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((HERE / name).read_text(encoding="utf-8"))
    return values


MINIMAL = _load("values-minimal.yaml")
PRODUCTION = _load("values-production.yaml")
VARIANTS = {"defaults+required": MINIMAL, "production": PRODUCTION}


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep merge like helm's -f / --set (maps merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merged(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def render(values: dict[str, Any]) -> dict[str, str]:
    with helm.Chart.load(CHART) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def manifests(rendered: dict[str, str]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def kind(docs: list[dict[str, Any]], k: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == k]


def one(docs: list[dict[str, Any]], k: str) -> dict[str, Any]:
    found = kind(docs, k)
    assert len(found) == 1, f"expected one {k}, got {len(found)}"
    return found[0]


def config_map(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The gateway's config (bffgate.toml), not the Grafana dashboard's ConfigMap."""
    (found,) = [d for d in kind(docs, "ConfigMap") if "bffgate.toml" in d.get("data", {})]
    return found


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    containers = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    c: dict[str, Any] = containers[0]
    return c


@pytest.fixture(scope="module", params=list(VARIANTS), ids=list(VARIANTS))
def variant(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    values = VARIANTS[request.param]
    return request.param, values, manifests(render(values))


# --------------------------------------------------------------------------- lint, render


@pytest.mark.parametrize("name", list(VARIANTS))
def test_helm_lint_is_clean(name: str, capfd: pytest.CaptureFixture[str]) -> None:
    report = helm.lint(
        CHART, VARIANTS[name], strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}"
    )
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # warnings and errors
    assert not problems and not report["errors"], json.dumps(report, indent=2)
    # Lint mode turns `fail` and `required` into log lines (Go's stderr), not findings.
    logged = capfd.readouterr().err
    assert "funcMap fail" not in logged and "funcMap required" not in logged, logged


def test_chart_defaults_alone_name_what_an_install_must_set() -> None:
    with pytest.raises(helm.HelmValuesError) as exc:
        render({})
    text = str(exc.value)
    for key in (
        "/server/public_url",
        "/oidc/issuer",
        "/oidc/client_id",
        "/secrets/admin_token",
        "/secrets/cookie_secret_keys",
        "/secrets/redis_url",
        "/secrets/oidc_client_secret",
    ):
        assert key in text, f"{key} not named in:\n{text}"


def test_rendered_kinds() -> None:
    minimal = sorted(d["kind"] for d in manifests(render(MINIMAL)))
    assert minimal == ["ConfigMap", "Deployment", "Secret", "Service", "Service", "ServiceAccount"]
    production = sorted(d["kind"] for d in manifests(render(PRODUCTION)))
    assert production == [
        "ConfigMap",
        "ConfigMap",  # the Grafana dashboard
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "PrometheusRule",
        "Service",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    ]


def test_every_manifest_passes_the_kubernetes_schemas(variant: Any) -> None:
    name, _, docs = variant
    validated = 0
    for doc in docs:
        where = f"{name}: {doc['kind']}/{doc['metadata']['name']}"
        if (doc["apiVersion"], doc["kind"]) in CRD_KINDS:
            with pytest.raises(kubernetes_validate.utils.SchemaNotFoundError):
                kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
            continue  # checked by test_prometheus_operator_resources
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{where}: {path}: {exc.message}")
        assert doc["metadata"]["namespace"] == NAMESPACE, where
        validated += 1
    assert validated == len(docs) - sum((d["apiVersion"], d["kind"]) in CRD_KINDS for d in docs)
    print(f"{name}: {validated} manifests validated against Kubernetes {KUBE_VERSION}")


def test_chart_app_version_is_the_package_version() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    with helm.Chart.load(CHART) as chart:
        assert chart.metadata["appVersion"] == project["version"]
    image = container(manifests(render(MINIMAL)))["image"]
    assert image == f"bffgate:{project['version']}"
    pinned = container(manifests(render(PRODUCTION)))["image"]
    assert pinned == f"{PRODUCTION['image']['repository']}@{PRODUCTION['image']['digest']}"


def test_rendering_is_deterministic() -> None:
    assert render(PRODUCTION) == render(PRODUCTION)
    assert render(MINIMAL) == render(MINIMAL)


# --------------------------------------------------------------------------- pod spec


def test_security_context(variant: Any, dockerfile: Dockerfile) -> None:
    _, values, docs = variant
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    uid = int(dockerfile.final.one("USER").args.split(":")[0])
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert psc["runAsUser"] == uid  # the image's USER
    assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(docs)["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == uid
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    # A read-only root filesystem: /tmp is an emptyDir, the config a read-only ConfigMap.
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container(docs)["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    config_volume = volumes[mounts["/etc/bffgate"]["name"]]
    assert config_volume["configMap"]["name"] == config_map(docs)["metadata"]["name"]
    assert mounts["/etc/bffgate"]["readOnly"] is True
    ca_secret = values.get("redisTLS", {}).get("caSecret")
    if ca_secret:
        assert volumes[mounts["/etc/redis-ca"]["name"]]["secret"]["secretName"] == ca_secret
        assert mounts["/etc/redis-ca"]["readOnly"] is True


def test_probes_ports_and_graceful_termination(variant: Any, dockerfile: Dockerfile) -> None:
    _, values, docs = variant
    c = container(docs)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    toml = _config_toml(docs)
    assert f"0.0.0.0:{ports['http']}" == _toml_value(toml, "server", "listen")
    assert f"0.0.0.0:{ports['admin']}" == _toml_value(toml, "server", "admin_listen")
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert c["startupProbe"]["httpGet"]["port"] == "admin"
    # The image's CMD, with the config where the ConfigMap is mounted.
    assert c["args"] == dockerfile.final.one("CMD").exec_form()
    assert "command" not in c  # the image's ENTRYPOINT stays
    # SIGTERM drains in-flight requests for up to 20 s after the preStop pause.
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    sleep = int(c["lifecycle"]["preStop"]["exec"]["command"][1])
    assert sleep == values.get("preStopSleepSeconds", 5)
    assert pod["terminationGracePeriodSeconds"] >= sleep + 20
    # Services: public -> http, admin -> admin; the Ingress only reaches the public one.
    services = {s["metadata"]["name"]: s for s in kind(docs, "Service")}
    fullname = one(docs, "Deployment")["metadata"]["name"]
    assert [p["targetPort"] for p in services[fullname]["spec"]["ports"]] == ["http"]
    assert [p["targetPort"] for p in services[f"{fullname}-admin"]["spec"]["ports"]] == ["admin"]
    assert services[f"{fullname}-admin"]["spec"]["type"] == "ClusterIP"
    for ing in kind(docs, "Ingress"):
        for rule in ing["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                assert p["backend"]["service"] == {"name": fullname, "port": {"name": "http"}}


def test_config_checksum_rolls_pods_on_config_change() -> None:
    def checksum(values: dict[str, Any]) -> str:
        pod = one(manifests(render(values)), "Deployment")["spec"]["template"]
        annotation: str = pod["metadata"]["annotations"]["checksum/config"]
        return annotation

    base = checksum(MINIMAL)
    assert re.fullmatch(r"[0-9a-f]{64}", base)
    assert checksum(MINIMAL) == base
    assert checksum(merged(MINIMAL, {"cookie": {"same_site": "lax"}})) != base


def test_replicas_resources_and_autoscaling() -> None:
    docs = manifests(render(merged(MINIMAL, {"replicaCount": 4})))
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 4
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert container(docs)["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    prod = manifests(render(PRODUCTION))
    assert "replicas" not in one(prod, "Deployment")["spec"]  # the HPA owns it
    hpa = one(prod, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": one(prod, "Deployment")["metadata"]["name"],
    }
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 12)
    pdb = one(prod, "PodDisruptionBudget")["spec"]
    assert pdb == {"maxUnavailable": 1, "selector": one(prod, "Deployment")["spec"]["selector"]}


# --------------------------------------------------------------------------- secrets


def _secret_values(values: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for v in values.get("secrets", {}).values():
        out.extend(v if isinstance(v, list) else [v])
    return [s for s in out if s]


ALL_SECRETS = merged(
    MINIMAL,
    {
        "oidc": {"client_auth": "client_secret_post"},
        "redis": {"sentinel": {"master": "sessions", "hosts": ["sentinel-0.data:26379"]}},
        "secrets": {
            "oidc_private_key": "-----BEGIN PRIVATE KEY-----unused-marker-Zq8-----END-----",
            "cookie_secret_keys": [
                "old-cookie-key-000000000000000000000000Kx",
                "new-cookie-key-111111111111111111111111Mw",
            ],
            "redis_sentinel_password": "sentinel-password-Pz4Hq",
        },
    },
)


@pytest.mark.parametrize("values", [MINIMAL, ALL_SECRETS], ids=["minimal", "all-secrets"])
def test_no_secret_value_outside_the_secret(values: dict[str, Any]) -> None:
    rendered = render(values)
    secrets = _secret_values(values)
    assert len(secrets) >= 4
    docs = manifests(rendered)
    secret = one(docs, "Secret")
    stored = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    for value in secrets:
        assert any(value in s for s in stored.values()), f"{value!r} not in the Secret"
    for path, text in rendered.items():
        if path.endswith("/secret.yaml"):
            continue
        for value in secrets:
            assert value not in text, f"a secret value is in {path}"
            assert base64.b64encode(value.encode()).decode() not in text, path

    # Secret-bearing keys appear in the ConfigMap only as env: references.
    def walk(table: dict[str, Any], prefix: str) -> None:
        for key, value in table.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            elif key in {"client_secret", "private_key", "secret_keys", "admin_token", "url", "password"}:
                assert str(value).startswith("env:"), f"{prefix}{key} in the ConfigMap"

    walk(tomllib.loads(_config_toml(docs)), "")


def test_secrets_reach_the_gateway_only_through_secret_refs(variant: Any) -> None:
    name, values, docs = variant
    env = {e["name"]: e for e in container(docs)["env"]}
    secret_name = values.get("existingSecret") or one(docs, "Deployment")["metadata"]["name"]
    for var in (
        "BFFGATE_OIDC__CLIENT_SECRET",
        "BFFGATE_COOKIE__SECRET_KEYS",
        "BFFGATE_SERVER__ADMIN_TOKEN",
        "BFFGATE_REDIS__URL",
    ):
        ref = env[var]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret_name, f"{name}: {var}"
        assert "value" not in env[var]
    if values.get("existingSecret"):
        assert not kind(docs, "Secret"), "existingSecret set: the chart must create none"
        keys = values["existingSecretKeys"]
        assert env["BFFGATE_REDIS__URL"]["valueFrom"]["secretKeyRef"]["key"] == keys["redis_url"]
    else:
        assert set(one(docs, "Secret")["data"]) >= {
            "oidc-client-secret",
            "cookie-secret-keys",
            "admin-token",
            "redis-url",
        }


# --------------------------------------------------------------------------- the gateway config


def _config_toml(docs: list[dict[str, Any]]) -> str:
    text: str = config_map(docs)["data"]["bffgate.toml"]
    return text


def _toml_value(toml: str, section: str, key: str) -> Any:
    return tomllib.loads(toml)[section][key]


_DUMMY = {
    "BFFGATE_OIDC__CLIENT_SECRET": "dummy-client-secret",
    "BFFGATE_OIDC__PRIVATE_KEY": "dummy-private-key",
    "BFFGATE_COOKIE__SECRET_KEYS": '["dummy-cookie-key-000000000000000000000001"]',
    "BFFGATE_SERVER__ADMIN_TOKEN": "dummy-admin-token-0001",
    "BFFGATE_REDIS__URL": "redis://:dummy-redis-password@redis-master:6379/0",
    "REDIS_SENTINEL_PASSWORD": "dummy-sentinel-password",
}


def pod_environment(docs: list[dict[str, Any]]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: secretKeyRef values from the
    rendered Secret (or dummies for an existing one), then $(VAR) expansion of `value`s."""
    secrets = {
        s["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in s.get("data", {}).items()}
        for s in kind(docs, "Secret")
    }
    env: dict[str, str] = {}
    for e in container(docs)["env"]:
        if "valueFrom" in e:
            ref = e["valueFrom"]["secretKeyRef"]
            if ref["name"] in secrets:
                env[e["name"]] = secrets[ref["name"]][ref["key"]]
            else:
                env[e["name"]] = _DUMMY[e["name"]]
        else:
            env[e["name"]] = re.sub(
                r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                lambda m: env.get(m.group(1), m.group(0)),
                e["value"],
            )
    return env


CONFIG_VARIANTS = {
    "defaults+required": MINIMAL,
    "production": PRODUCTION,
    "all-secrets": ALL_SECRETS,
    "public-client": merged(
        MINIMAL, {"oidc": {"client_auth": "none"}, "secrets": {"oidc_client_secret": ""}}
    ),
    "private-key-jwt": merged(
        MINIMAL,
        {
            "oidc": {"client_auth": "private_key_jwt"},
            "secrets": {"oidc_client_secret": "",  # a real key: check-config loads it
                        "oidc_private_key": json.dumps(ECKey.generate_key("P-256").as_dict(
                            private=True))},
        },
    ),
    "redis-cluster-tls": merged(
        MINIMAL,
        {
            "redis": {"cluster": True},
            "secrets": {"redis_url": "rediss://:pw@redis-cluster.data.svc:6380/0"},
        },
    ),
}


@pytest.mark.parametrize("name", list(CONFIG_VARIANTS))
def test_the_gateway_accepts_the_rendered_config(name: str, tmp_path: Path) -> None:
    values = CONFIG_VARIANTS[name]
    docs = manifests(render(values))
    path = tmp_path / "bffgate.toml"
    path.write_text(_config_toml(docs), encoding="utf-8")
    environ = pod_environment(docs)
    assert not [v for v in environ.values() if "$(" in v], environ
    settings = load_settings(path, environ=environ)  # raises ConfigError naming every problem
    assert settings.server.listen == "0.0.0.0:8080"
    assert settings.server.admin_listen == "0.0.0.0:9090"
    assert settings.session.store == "redis"
    assert settings.server.public_url == values["server"]["public_url"]
    assert settings.oidc.issuer == values["oidc"]["issuer"]
    assert [r.prefix for r in settings.routes] == [r["prefix"] for r in values.get("routes", [])]
    assert settings.redis.url.get() == environ["BFFGATE_REDIS__URL"]
    assert settings.cookie.secret_keys
    if not values.get("existingSecret"):  # the chart's Secret carries the values unchanged
        secrets = values["secrets"]
        assert [k.get() for k in settings.cookie.secret_keys] == secrets["cookie_secret_keys"]
        assert settings.server.admin_token.get() == secrets["admin_token"]
        assert settings.redis.url.get() == secrets["redis_url"]
        assert settings.oidc.client_secret.get() == secrets.get("oidc_client_secret", "")
        assert settings.oidc.private_key.get() == secrets.get("oidc_private_key", "")
    sentinel = values.get("redis", {}).get("sentinel")
    if sentinel:
        assert settings.redis.sentinel["master"] == sentinel["master"]
        assert settings.redis.sentinel["hosts"] == sentinel["hosts"]
        assert settings.redis.sentinel["password"] == environ["REDIS_SENTINEL_PASSWORD"]
        toml = tomllib.loads(_config_toml(docs))
        assert toml["redis"]["sentinel"]["password"] == "env:REDIS_SENTINEL_PASSWORD"
    assert settings.oidc.client_auth == values["oidc"].get("client_auth", "client_secret_basic")
    assert settings.redis.cluster is values.get("redis", {}).get("cluster", False)
    if values is PRODUCTION:
        assert settings.cookie.same_site == "lax"
        assert settings.session.idle_timeout == 20 * 60
        assert settings.oidc.extra_auth_params == {"prompt": "login", "ui_locales": "de"}
        assert settings.server.max_body_size == 5 * 2**20
        assert settings.redis.wait_replicas == 1
        assert settings.routes[0].strip_prefix is True and settings.routes[0].timeout == 15


# --------------------------------------------------------------------------- values.schema.json

# Config keys the chart sets itself, and the secret ones that only come from the environment.
CHART_FIXED = {"server.listen", "server.admin_listen", "session.store"}
SECRET_KEYS = {
    "server.admin_token",
    "oidc.client_secret",
    "oidc.private_key",
    "cookie.secret_keys",
    "redis.url",
}


def test_schema_offers_only_keys_the_gateway_knows() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    sections: dict[str, type[Any]] = {
        "server": ServerSettings,
        "oidc": OidcSettings,
        "session": SessionSettings,
        "cookie": CookieSettings,
        "redis": RedisSettings,
        "log": LogSettings,
        "telemetry": TelemetrySettings,
    }
    known: set[str] = set()
    for name, cls in sections.items():
        fields = {f"{name}.{f.name}" for f in dataclasses.fields(cls)}
        offered = {f"{name}.{k}" for k in schema["properties"][name]["properties"]}
        assert schema["properties"][name]["additionalProperties"] is False
        assert offered <= fields - CHART_FIXED - SECRET_KEYS, offered - fields
        known |= fields
    # The env variables the Deployment sets (BFFGATE_<SECTION>__<KEY>) still name real keys.
    assert known >= SECRET_KEYS | CHART_FIXED
    route = schema["properties"]["routes"]["items"]
    assert set(route["properties"]) <= {f.name for f in dataclasses.fields(RouteSettings)}
    assert set(route["required"]) == {"prefix", "upstream", "token"}


def _without(values: dict[str, Any], section: str, key: str) -> dict[str, Any]:
    out = copy.deepcopy(values)
    out[section][key] = None  # like --set section.key=null: removes the chart default too
    return out


BAD_VALUES = {
    "replicaCount 0": (merged(MINIMAL, {"replicaCount": 0}), "/replicaCount"),
    "same_site none": (merged(MINIMAL, {"cookie": {"same_site": "none"}}), "/cookie/same_site"),
    "issuer missing": (_without(MINIMAL, "oidc", "issuer"), "/oidc"),
    "issuer empty": (merged(MINIMAL, {"oidc": {"issuer": ""}}), "/oidc/issuer"),
    "issuer not https": (
        merged(MINIMAL, {"oidc": {"issuer": "http://idp.example.com"}}),
        "/oidc/issuer",
    ),
    "route without token": (
        merged(MINIMAL, {"routes": [{"prefix": "/api", "upstream": "http://api:8080"}]}),
        "/routes/0",
    ),
    "route token client": (
        merged(
            MINIMAL,
            {"routes": [{"prefix": "/api", "upstream": "http://api:8080", "token": "client"}]},
        ),
        "/routes/0/token",
    ),
    "route shadows /bff": (
        merged(
            MINIMAL,
            {"routes": [{"prefix": "/bff/x", "upstream": "http://api:8080", "token": "user"}]},
        ),
        "/routes/0/prefix",
    ),
    "secret in the config": (merged(MINIMAL, {"oidc": {"client_secret": "x"}}), "/oidc"),
    "redis url in the config": (merged(MINIMAL, {"redis": {"url": "redis://r:6379"}}), "/redis"),
    "typo at top level": (merged(MINIMAL, {"replicas": 3}), "replicas"),
    "short cookie key": (
        merged(MINIMAL, {"secrets": {"cookie_secret_keys": ["short"]}}),
        "/secrets/cookie_secret_keys/0",
    ),
    "short admin token": (
        merged(MINIMAL, {"secrets": {"admin_token": "short"}}),
        "/secrets/admin_token",
    ),
    "no client secret": (
        merged(MINIMAL, {"secrets": {"oidc_client_secret": ""}}),
        "/secrets/oidc_client_secret",
    ),
    "bad redis scheme": (
        merged(MINIMAL, {"secrets": {"redis_url": "http://r:6379"}}),
        "/secrets/redis_url",
    ),
    "sentinel without hosts": (
        merged(MINIMAL, {"redis": {"sentinel": {"master": "m"}}}),
        "/redis/sentinel",
    ),
    "cluster and sentinel": (
        merged(MINIMAL, {"redis": {"cluster": True, "sentinel": {"master": "m", "hosts": ["s:26379"]}}}),
        "/redis/sentinel",
    ),
    "wait_replicas with cluster": (
        merged(MINIMAL, {"redis": {"cluster": True, "wait_replicas": 1}}),
        "/redis/wait_replicas",
    ),
    "existingSecret without redis key": (
        merged(PRODUCTION, {"existingSecretKeys": {"redis_url": ""}}),
        "/existingSecretKeys/redis_url",
    ),
    "scopes without openid": (merged(MINIMAL, {"oidc": {"scopes": ["profile"]}}), "/oidc/scopes"),
    "public_url with a path": (
        merged(MINIMAL, {"server": {"public_url": "https://shop.example.com/app"}}),
        "/server/public_url",
    ),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_values_schema_rejects(case: str) -> None:
    values, where = BAD_VALUES[case]
    with pytest.raises(helm.HelmValuesError) as exc:
        render(values)
    assert "values don't meet the specifications of the schema" in str(exc.value)
    assert where in str(exc.value), str(exc.value)


def test_template_checks_reject_what_the_schema_cannot() -> None:
    with pytest.raises(helm.HelmRenderError, match="maxReplicas must be >= "):
        render(merged(PRODUCTION, {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}))
    with pytest.raises(helm.HelmRenderError, match="minAvailable must be below replicaCount"):
        render(
            merged(
                MINIMAL,
                {"replicaCount": 2, "podDisruptionBudget": {"enabled": True, "minAvailable": 2}},
            )
        )


# --------------------------------------------------------------------------- network, monitoring


def test_network_policy_limits_the_admin_port() -> None:
    docs = manifests(render(PRODUCTION))
    policy = one(docs, "NetworkPolicy")["spec"]
    assert policy["podSelector"] == one(docs, "Deployment")["spec"]["selector"]
    by_port = {rule["ports"][0]["port"]: rule for rule in policy["ingress"]}
    assert set(by_port) == {"http", "admin"}
    admin_from = by_port["admin"]["from"]
    assert {"podSelector": {}} in admin_from  # the release's own namespace
    monitoring = [p for p in admin_from if "namespaceSelector" in p]
    assert monitoring == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]
    assert by_port["http"]["from"] == PRODUCTION["networkPolicy"]["publicFrom"]


def test_prometheus_operator_resources() -> None:
    docs = manifests(render(PRODUCTION))
    fullname = one(docs, "Deployment")["metadata"]["name"]
    admin_service = next(s for s in kind(docs, "Service") if s["metadata"]["name"] == f"{fullname}-admin")
    public_service = next(s for s in kind(docs, "Service") if s["metadata"]["name"] == fullname)

    sm = one(docs, "ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    selector = sm["spec"]["selector"]["matchLabels"]
    assert selector.items() <= admin_service["metadata"]["labels"].items()
    assert not selector.items() <= public_service["metadata"]["labels"].items()
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = sm["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == (
        "admin",
        "/metrics",
        "15s",
    )
    assert endpoint["authorization"] == {
        "type": "Bearer",
        "credentials": {
            "name": PRODUCTION["existingSecret"],
            "key": PRODUCTION["existingSecretKeys"]["admin_token"],
        },
    }

    rule = one(docs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    groups = {g["name"]: g["rules"] for g in rule["spec"]["groups"]}
    assert list(groups) == ["bffgate-sli", "bffgate-slo", "bffgate"]  # tests/chart/test_slo_rules.py
    exported = {
        f"{m.name}{suffix}"
        for m in Metrics().registry.collect()
        for suffix in ("", "_total", "_bucket", "_count", "_sum")
    }
    assert all(set(r) == {"record", "expr"} for r in groups["bffgate-sli"])
    alerting = groups["bffgate-slo"] + groups["bffgate"]
    alerts = [r["alert"] for r in alerting]
    assert len(alerts) == len(set(alerts)) >= 12
    assert "BffgateCsrfRejections" in alerts  # additionalRules
    for r in alerting:
        assert set(r) <= {"alert", "expr", "for", "labels", "annotations"}, r
        assert r["labels"]["severity"] in {"critical", "warning", "info"}
        assert r["annotations"]["summary"]
    for r in groups["bffgate-sli"] + alerting:
        used = set(re.findall(r"\b(bffgate_[a-z_]+)\b(?!:)", r["expr"]))
        assert used <= exported, f"{r.get('alert', r.get('record'))}: unknown metrics {used - exported}"
        if r.get("alert") != "BffgateCsrfRejections":  # the chart's own rules: this release only
            assert f'service="{fullname}-admin"' in r["expr"], r


def test_notes_give_the_next_steps() -> None:
    notes = render(MINIMAL)["bffgate/templates/NOTES.txt"]
    assert "https://shop.example.com/bff/callback" in notes
    assert "check-config --config /etc/bffgate/bffgate.toml" in notes
    assert f"rollout status deployment/{RELEASE}" in notes
    assert "port-forward" in notes
