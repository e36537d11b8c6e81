"""The chart's SLO rules and Grafana dashboard (issue 13 part 5), checked with Debian's
promtool (package prometheus; .ci/run installs it): `promtool check rules` on the rendered
PrometheusRule, `promtool test rules` on tests/chart/promtool/*.yaml (each alert seen
firing and not firing on synthetic series), the dashboard's queries parsed by promtool
too. That every metric they use is in a real gateway's /metrics is
tests/e2e/test_slo_metrics.py::test_every_metric_the_chart_uses_is_in_the_gateways_metrics.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from support.slo_chart import (
    NAMESPACE,
    PROMTOOL_TESTS,
    RELEASE,
    TARGET_LABELS,
    WINDOWS,
    alerts_of,
    dashboard,
    dashboard_exprs,
    declared_labels,
    family_of,
    panels,
    production_values,
    records_of,
    render_docs,
    rule_groups,
    selected,
)

pytestmark = pytest.mark.chart

PRODUCTION = production_values()
MINIMAL: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parent / "values-minimal.yaml").read_text(encoding="utf-8"))
SLI_RECORDS = ("bffgate:token_exchange_errors", "bffgate:token_exchange_invalid_grant",
               "bffgate:login_attempts_errors", "bffgate:proxy_requests_errors",
               "bffgate:callback_missing_params", "bffgate_route:proxy_requests_errors")
BURN = {"FastBurn": ("1h", "5m", "14.4", "critical"), "SlowBurn": ("6h", "30m", "6", "warning")}
SLOS = {  # alert prefix -> (recorded error ratio, values key)
    "BffgateTokenExchangeSLO": ("bffgate:token_exchange_errors", "tokenExchangeSuccess"),
    "BffgateLoginSLO": ("bffgate:login_attempts_errors", "loginSuccess"),
    "BffgateAvailabilitySLO": ("bffgate:proxy_requests_errors", "availability"),
}


def with_values(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in override.items():
        out[k] = with_values(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) \
            else copy.deepcopy(v)
    return out


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    assert exe, "promtool not found: apt-get install prometheus (Debian's package; .ci/run does)"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=300)


def write_rules(groups: list[dict[str, Any]], path: Path) -> Path:
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False, width=10_000))
    return path


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return render_docs(PRODUCTION)


@pytest.fixture(scope="module")
def groups(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return rule_groups(docs)


@pytest.fixture(scope="module")
def rules_file(groups: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_rules(groups, tmp_path_factory.mktemp("rules") / "rules.yaml")


# --------------------------------------------------------------------------- promtool


SLO_VARIANTS = {
    "production": PRODUCTION,
    "minimal with rules and other targets": with_values(MINIMAL, {
        "metrics": {"prometheusRule": {"enabled": True}},
        "slo": {"tokenExchangeSuccess": 0.995, "loginSuccess": 0.98, "availability": 0.9995}}),
}


@pytest.mark.parametrize("name", list(SLO_VARIANTS))
def test_promtool_check_rules(name: str, tmp_path: Path) -> None:
    groups = rule_groups(render_docs(SLO_VARIANTS[name]))
    path = write_rules(groups, tmp_path / "rules.yaml")
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    count = sum(len(g["rules"]) for g in groups)
    assert f"SUCCESS: {count} rules found" in result.stdout, result.stdout
    print(f"{name}: promtool check rules: {count} rules")


def _promtool_cases() -> list[Path]:
    cases = sorted(PROMTOOL_TESTS.glob("*.yaml"))
    assert cases, f"no promtool tests in {PROMTOOL_TESTS}"
    return cases


@pytest.mark.parametrize("case", _promtool_cases(), ids=lambda p: p.stem)
def test_promtool_test_rules(case: Path, groups: list[dict[str, Any]], rules_file: Path,
                             tmp_path: Path) -> None:
    """promtool runs the unit tests against the rendered rules. An expected alert without
    exp_annotations gets the rule's own (static) annotations: promtool compares them too."""
    spec = yaml.safe_load(case.read_text(encoding="utf-8"))
    annotations = {r["alert"]: r.get("annotations", {}) for r in alerts_of(groups)}
    for test in spec["tests"]:
        for check in test.get("alert_rule_test", []):
            for alert in check.get("exp_alerts") or []:
                if "exp_annotations" not in alert:
                    static = annotations[check["alertname"]]
                    assert not any("{{" in v for v in static.values()), (
                        f"{case.name}: {check['alertname']} has templated annotations: "
                        "give exp_annotations")
                    alert["exp_annotations"] = static
    spec["rule_files"] = [str(rules_file)]
    path = tmp_path / case.name
    path.write_text(yaml.safe_dump(spec, sort_keys=False, width=10_000))
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0 and "SUCCESS" in result.stdout, result.stdout + result.stderr


def test_every_alert_is_seen_firing_and_not_firing(groups: list[dict[str, Any]]) -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in _promtool_cases():
        for test in yaml.safe_load(case.read_text(encoding="utf-8"))["tests"]:
            for check in test.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {r["alert"] for r in alerts_of(groups)}
    assert alerts - fired == set(), "never seen firing"
    assert alerts - quiet == set(), "never seen not firing"
    assert fired | quiet <= alerts, "a promtool test names an alert the chart lacks"


def test_every_sli_is_recorded_in_every_window_and_tested(groups: list[dict[str, Any]]) -> None:
    records = records_of(groups)
    bases = {re.sub(r"(:ratio_rate|:rate|:p99_)(5m|30m|1h|6h)$", r"\1", r) for r in records}
    assert bases == {f"{b}:ratio_rate" for b in SLI_RECORDS} | {
        "bffgate:login_start_duration_seconds:p99_", "bffgate:log_redactions:rate",
        "bffgate_route:proxy_duration_seconds:p99_"}
    for base in bases:
        assert {f"{base}{w}" for w in WINDOWS} <= set(records), base
    for name, expr in records.items():
        assert f'namespace="{NAMESPACE}"' in expr and "by (namespace, service" in expr, name
    tested = "\n".join(c.read_text(encoding="utf-8") for c in _promtool_cases())
    read_by_alerts = "\n".join(r["expr"] for r in alerts_of(groups))
    for base in bases:
        assert base in tested or base in read_by_alerts, f"{base}* is never checked"


def test_burn_rate_alerts(groups: list[dict[str, Any]]) -> None:
    """Page: 1 h AND 5 m above 14.4x the budget; ticket: 6 h AND 30 m above 6x; for M1, M5
    and proxied availability, each on this release's series only."""
    (slo_group,) = [g for g in groups if g["name"] == "bffgate-slo"]
    by_name = {r["alert"]: r for r in slo_group["rules"]}
    assert set(by_name) == {f"{a}{b}" for a in SLOS for b in BURN}
    sel = f'{{namespace="{NAMESPACE}", service="{RELEASE}-bffgate-admin"}}'
    for prefix, (record, key) in SLOS.items():
        target = PRODUCTION.get("slo", {}).get(key) or {
            "tokenExchangeSuccess": 0.99, "loginSuccess": 0.99, "availability": 0.999}[key]
        for burn, (long, short, factor, severity) in BURN.items():
            rule = by_name[prefix + burn]
            expr = " ".join(rule["expr"].split())
            limit = f"({factor} * (1 - {target}))"
            assert expr == (f"{record}:ratio_rate{long}{sel} > {limit} and "
                            f"{record}:ratio_rate{short}{sel} > {limit}"), expr
            assert rule["labels"]["severity"] == severity
            assert "for" not in rule  # the short window already keeps it from flapping
            assert f"slo.{key}" in rule["annotations"]["summary"]


def test_slo_targets_come_from_values() -> None:
    values = SLO_VARIANTS["minimal with rules and other targets"]
    docs = render_docs(with_values(values, {"metrics": {"grafanaDashboard": {"enabled": True}}}))
    exprs = {r["alert"]: r["expr"] for r in alerts_of(rule_groups(docs))}
    assert "(14.4 * (1 - 0.995))" in exprs["BffgateTokenExchangeSLOFastBurn"]
    assert "(6 * (1 - 0.98))" in exprs["BffgateLoginSLOSlowBurn"]
    assert "(14.4 * (1 - 0.9995))" in exprs["BffgateAvailabilitySLOFastBurn"]
    board = dashboard(docs)
    stats = {p["title"]: p for p in panels(board) if p["type"] == "stat"}
    steps = stats["Proxied availability"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1] == {"color": "green", "value": 0.9995}
    assert any("(1 - 0.98)" in e for e in dashboard_exprs(board))


@pytest.mark.parametrize("bad", [1, 0, 1.5, "99.9%", None])
def test_slo_targets_are_fractions(bad: Any) -> None:
    with pytest.raises(helm.HelmValuesError) as exc:
        render_docs(with_values(MINIMAL, {"slo": {"availability": bad}}))
    assert "/slo" in str(exc.value), str(exc.value)


# --------------------------------------------------------------------------- dashboard


def test_dashboard_is_off_by_default_and_a_sidecar_configmap_when_on(tmp_path: Path) -> None:
    assert not [d for d in render_docs(MINIMAL) if d["metadata"]["name"].endswith("-dashboard")]
    docs = render_docs(with_values(PRODUCTION, {"metrics": {"grafanaDashboard": {
        "namespace": "monitoring", "labels": {"grafana_dashboard": "1", "team": "web"}}}}))
    (cm,) = [d for d in docs if d["metadata"]["name"].endswith("-dashboard")]
    kubernetes_validate.validate(cm, "1.30.0", strict=True)
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["labels"]["team"] == "web"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Gateways"}
    # one file per release for the sidecar, which writes every key into one folder
    assert list(cm["data"]) == [f"{NAMESPACE}-{RELEASE}-bffgate.json"]
    board = dashboard(docs)
    assert re.fullmatch(r"bffgate-[0-9a-f]{12}", board["uid"])  # Grafana: at most 40
    assert board["title"] == f"bffgate {NAMESPACE}/{RELEASE}-bffgate"
    other = dashboard(render_docs(with_values(PRODUCTION, {"fullnameOverride": "gw2"})))
    assert other["uid"] != board["uid"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["namespace"]["query"] == NAMESPACE
    assert variables["service"]["query"] == f"{RELEASE}-bffgate-admin"
    assert "__" not in str(board).replace("$__rate_interval", "")  # every placeholder filled


def test_dashboard_panels(docs: list[dict[str, Any]], groups: list[dict[str, Any]],
                          tmp_path: Path) -> None:
    board = dashboard(docs)
    shown = [p for p in panels(board) if p["type"] != "row"]
    titles = " ".join(p["title"] for p in shown)
    for sli in ("M1", "M2", "M3", "M4", "M5", "M6", "Availability by route", "Latency by route"):
        assert sli in titles, sli
    for p in shown:
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"] and p["description"], p["title"]
        for t in p["targets"]:
            assert 'namespace="$namespace", service="$service"' in t["expr"], (p["title"], t)
    # every query parses (promtool checks it as a recording rule) ...
    exprs = dashboard_exprs(board)
    as_rules = [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(exprs)]}]
    result = promtool("check", "rules", str(write_rules(as_rules, tmp_path / "dash.yaml")))
    assert result.returncode == 0, result.stdout + result.stderr
    # ... and reads only series the rules record or the gateway exports, with their labels
    records = records_of(groups)
    families = declared_labels()
    chosen = selected(exprs)
    for name, labels in chosen.metrics.items():
        if ":" in name:
            assert name in records, f"dashboard reads {name}, which no rule records"
            continue
        family = family_of(name, families)
        assert family, f"dashboard reads {name}, which bffgate lacks"
        assert labels - TARGET_LABELS <= families[family], name
    every_label = set().union(*families.values())
    assert chosen.grouped_by - TARGET_LABELS <= every_label


def test_rules_select_only_metrics_and_labels_the_gateway_exports(
        groups: list[dict[str, Any]]) -> None:
    families = declared_labels()
    records = records_of(groups)
    chosen = selected([r["expr"] for g in groups for r in g["rules"]])
    for name, labels in chosen.metrics.items():
        if name == "up" or ":" in name:
            assert name == "up" or name in records, name
            continue
        family = family_of(name, families)
        assert family, f"a rule reads {name}, which bffgate lacks"
        assert labels - TARGET_LABELS <= families[family], name
    assert chosen.grouped_by - TARGET_LABELS <= set().union(*families.values())
