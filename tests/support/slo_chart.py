"""The Helm chart's monitoring resources as data: the PrometheusRule's rule groups and the
Grafana dashboard rendered with the real Helm engine (helm-python-sdk), and the metric
names and label names their PromQL selects. Used by tests/chart/test_slo_rules.py and by
the e2e check that every metric they use is in a real gateway's /metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml
from prometheus_client.metrics import MetricWrapperBase

from bffgate.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "bffgate"
PROMTOOL_TESTS = REPO / "tests" / "chart" / "promtool"
RELEASE, NAMESPACE = "shop-bff", "shop"
# Labels Prometheus (the Operator's ServiceMonitor) adds to every scraped series, and the
# histogram's bucket label.
TARGET_LABELS = frozenset({"namespace", "service", "pod", "job", "instance", "endpoint",
                           "container", "le"})
WINDOWS = ("5m", "30m", "1h", "6h")


def production_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(
        (REPO / "tests" / "chart" / "values-production.yaml").read_text(encoding="utf-8"))
    return values


def render_docs(values: dict[str, Any]) -> list[dict[str, Any]]:
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if not path.endswith("NOTES.txt"):
            docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def rule_groups(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def dashboard(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith(
        "-dashboard")]
    (text,) = cm["data"].values()
    board: dict[str, Any] = json.loads(text)
    return board


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in board["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # a collapsed row keeps its panels inside
    return out


def dashboard_exprs(board: dict[str, Any]) -> list[str]:
    """Every panel query, Grafana's variables replaced as Grafana would (for promtool)."""
    variables = {v["name"]: v.get("query", "") for v in board["templating"]["list"]}
    exprs = []
    for p in panels(board):
        for t in p.get("targets", []):
            expr = t["expr"].replace("$__rate_interval", "5m")
            for name, value in variables.items():
                expr = expr.replace(f"${name}", value)
            exprs.append(expr)
    return exprs


@dataclass
class Selected:
    """What PromQL expressions select: metric name -> label names matched on it, and the
    label names the aggregations group by."""

    metrics: dict[str, set[str]] = field(default_factory=dict)
    grouped_by: set[str] = field(default_factory=set)


_SELECTOR = re.compile(r"(?<![\w:])([a-zA-Z_:][\w:]*)\s*(\{[^}]*\})?")
_MATCHER = re.compile(r'(\w+)\s*(?:=~|!~|!=|=)\s*""')
_BY = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
_NOT_METRICS = frozenset({"sum", "rate", "increase", "count", "histogram_quantile", "by", "or",
                          "and", "unless", "on", "ignoring", "without", "max", "min", "avg",
                          "bool", "offset"})


def selected(exprs: list[str]) -> Selected:
    out = Selected()
    for expr in exprs:
        text = re.sub(r'"[^"]*"', '""', expr)  # label values out of the way
        for m in _BY.finditer(text):
            out.grouped_by |= {x.strip() for x in m.group(1).split(",") if x.strip()}
        text = _BY.sub("", text)
        text = re.sub(r"\[[^\]]*\]", "", text)  # range durations
        for m in _SELECTOR.finditer(text):
            name = m.group(1)
            if name in _NOT_METRICS or re.fullmatch(r"[\d.e+-]+", name):
                continue
            labels = set(_MATCHER.findall(m.group(2) or ""))
            out.metrics.setdefault(name, set()).update(labels)
    return out


def alerts_of(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for g in groups for r in g["rules"] if "alert" in r]


def records_of(groups: list[dict[str, Any]]) -> dict[str, str]:
    return {r["record"]: r["expr"] for g in groups for r in g["rules"] if "record" in r}


def declared_labels() -> dict[str, set[str]]:
    """Family name (no _total) -> label names, as bffgate.metrics declares them."""
    return {m._name: set(m._labelnames)
            for m in vars(Metrics()).values() if isinstance(m, MetricWrapperBase)}


def family_of(sample_name: str, families: Iterable[str]) -> str | None:
    """The metric family a sample name belongs to (a counter's _total, a histogram's
    _bucket/_count/_sum), or None."""
    names = set(families)
    for suffix in ("_total", "_bucket", "_count", "_sum", ""):
        if sample_name.endswith(suffix) and sample_name.removesuffix(suffix) in names:
            return sample_name.removesuffix(suffix)
    return None
