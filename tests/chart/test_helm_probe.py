"""The chart's probe CronJob (values ``probe.*``), rendered with the real Helm engine and
validated against the Kubernetes 1.30 schemas like the other templates: off by default;
when on, ``bffgate probe --json`` on the schedule with the gateway's config and secrets,
the test account from a Secret (password as a file), and pods no Service can select."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from chart_support import CHART, HERE

from bffgate.cli import build_parser

pytestmark = pytest.mark.chart

KUBE_VERSION = "1.30.0"
RELEASE, NAMESPACE = "shop-bff", "shop"
MINIMAL: dict[str, Any] = yaml.safe_load((HERE / "values-minimal.yaml").read_text())
PROBE = {"probe": {"enabled": True, "schedule": "*/2 * * * *",
                   "user": {"secretName": "probe-account"},
                   "pushgateway": "http://pushgateway.monitoring.svc:9091"}}


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in override.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) \
            else copy.deepcopy(v)
    return out


def docs(values: dict[str, Any]) -> list[dict[str, Any]]:
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return [d for path, text in sorted(rendered.items()) if not path.endswith("NOTES.txt")
            for d in yaml.safe_load_all(text) if d]


def of_kind(found: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in found if d["kind"] == kind]


def pod_spec(found: list[dict[str, Any]]) -> dict[str, Any]:
    (cron,) = of_kind(found, "CronJob")
    spec: dict[str, Any] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def test_off_by_default() -> None:
    assert not of_kind(docs(MINIMAL), "CronJob")


@pytest.mark.parametrize("extra", [PROBE, {"probe": {"enabled": True}}],
                         ids=["with-account", "no-account"])
def test_cronjob_passes_the_kubernetes_schemas_and_helm_lint(extra: dict[str, Any]) -> None:
    values = merged(MINIMAL, extra)
    (cron,) = of_kind(docs(values), "CronJob")
    kubernetes_validate.validate(cron, KUBE_VERSION, strict=True)
    assert cron["metadata"]["namespace"] == NAMESPACE
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE,
                       kube_version=f"v{KUBE_VERSION}")
    assert not [m for m in report["messages"] if m["severity"] >= 2] and not report["errors"]


def test_the_probe_command_and_its_account() -> None:
    found = docs(merged(MINIMAL, PROBE))
    (cron,) = of_kind(found, "CronJob")
    assert cron["spec"]["schedule"] == "*/2 * * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0
    pod = pod_spec(found)
    (c,) = pod["containers"]
    args = c["args"]
    assert args[:4] == ["probe", "--json", "--config", "/etc/bffgate/bffgate.toml"]
    parsed = build_parser().parse_args([a.replace("$(PROBE_USER)", "probe-user") for a in args])
    assert (parsed.config, parsed.json, parsed.user) == ("/etc/bffgate/bffgate.toml", True,
                                                         "probe-user")
    assert parsed.password_file == "/var/run/bffgate-probe/password"
    service = of_kind(found, "Deployment")[0]["metadata"]["name"]  # the public Service's name
    assert any(s["metadata"]["name"] == service for s in of_kind(found, "Service"))
    assert parsed.direct_url == f"http://{service}.{NAMESPACE}.svc:80"
    assert parsed.pushgateway == "http://pushgateway.monitoring.svc:9091"
    assert parsed.url is None  # server.public_url from the config
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c["env"]}
    assert env["PROBE_USER"] == {"name": "probe-account", "key": "username"}
    deployment = of_kind(found, "Deployment")[0]["spec"]["template"]["spec"]
    gateway_env = {e["name"]: e["valueFrom"]["secretKeyRef"]
                   for e in deployment["containers"][0]["env"] if "valueFrom" in e}
    assert {k: v for k, v in env.items() if k != "PROBE_USER"} == gateway_env
    account = next(v for v in pod["volumes"] if v["name"] == "probe-account")["secret"]
    assert account["secretName"] == "probe-account"
    assert account["items"] == [{"key": "password", "path": "password"}]
    assert account["defaultMode"] == 0o440
    assert c["image"] == deployment["containers"][0]["image"]
    assert c["securityContext"] == deployment["containers"][0]["securityContext"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["automountServiceAccountToken"] is False
    assert pod["restartPolicy"] == "Never"


def test_no_service_selects_a_probe_pod() -> None:
    found = docs(merged(MINIMAL, PROBE))
    (cron,) = of_kind(found, "CronJob")
    labels = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    selectors = [s["spec"]["selector"] for s in of_kind(found, "Service")]
    selectors.append(of_kind(found, "Deployment")[0]["spec"]["selector"]["matchLabels"])
    assert selectors
    for selector in selectors:
        assert not selector.items() <= labels.items(), selector


def test_without_an_account_no_user_and_no_secret_volume() -> None:
    pod = pod_spec(docs(merged(MINIMAL, {"probe": {"enabled": True,
                                                    "compareWithService": False,
                                                    "url": "https://shop.example.com"}})))
    args = pod["containers"][0]["args"]
    assert "--user" not in args and "--password-file" not in args
    assert "--direct-url" not in args
    assert args[args.index("--url") + 1] == "https://shop.example.com"
    assert {v["name"] for v in pod["volumes"]} == {"config", "tmp"}


def test_no_secret_value_in_the_cronjob() -> None:
    found = docs(merged(MINIMAL, PROBE))
    (cron,) = of_kind(found, "CronJob")
    text = yaml.safe_dump(cron)
    for value in MINIMAL["secrets"].values():
        for v in value if isinstance(value, list) else [value]:
            assert v not in text


@pytest.mark.parametrize(("override", "where"), [
    pytest.param({"url": "https://shop.example.com/app"}, "/probe/url", id="url-with-path"),
    pytest.param({"path": "api"}, "/probe/path", id="path-not-absolute"),
    pytest.param({"schedul": "* * * * *"}, "schedul", id="typo"),
    pytest.param({"user": {"passwordKey": ""}}, "/probe/user/passwordKey", id="empty-key"),
    pytest.param({"pushgateway": "pushgateway:9091"}, "/probe/pushgateway", id="no-scheme"),
])
def test_values_schema_rejects(override: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError) as exc:
        docs(merged(MINIMAL, {"probe": {"enabled": True, **override}}))
    assert where in str(exc.value), str(exc.value)


def test_values_file_documents_the_probe() -> None:
    text = (Path(CHART) / "values.yaml").read_text()
    assert "README \"Synthetic login probe\"" in text
