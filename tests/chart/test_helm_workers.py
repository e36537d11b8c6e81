"""The chart's ``workers`` value: rendered into the ConfigMap's bffgate.toml as
server.workers (1 by default), refused by values.schema.json unless an integer >= 1."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import helm_python as helm
import pytest
import yaml
from chart_support import CHART, HERE

pytestmark = pytest.mark.chart

MINIMAL: dict[str, Any] = yaml.safe_load((HERE / "values-minimal.yaml").read_text())


def config_toml(values: dict[str, Any]) -> dict[str, Any]:
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values, name="gw", namespace="shop", is_install=True)
    for path, text in sorted(rendered.items()):
        for doc in yaml.safe_load_all(text) if not path.endswith("NOTES.txt") else ():
            if doc and doc["kind"] == "ConfigMap" and "bffgate.toml" in doc.get("data", {}):
                return tomllib.loads(doc["data"]["bffgate.toml"])
    raise AssertionError("no ConfigMap with bffgate.toml")


@pytest.mark.parametrize(("workers", "expected"), [(None, 1), (1, 1), (4, 4)])
def test_workers_reach_the_config(workers: int | None, expected: int) -> None:
    values = copy.deepcopy(MINIMAL)
    if workers is not None:
        values["workers"] = workers
    assert config_toml(values)["server"]["workers"] == expected


@pytest.mark.parametrize("bad", [0, "auto", 1.5])
def test_the_schema_refuses(bad: object) -> None:
    values = {**copy.deepcopy(MINIMAL), "workers": bad}
    with pytest.raises(helm.HelmValuesError, match="/workers"):
        config_toml(values)


def test_values_file_documents_workers_and_resources() -> None:
    text = (CHART / "values.yaml").read_text(encoding="utf-8")
    assert "\nworkers: 1\n" in text
    note = text.split("\nworkers: 1\n", 1)[0].rsplit("\n\n", 1)[1]
    assert "requests.cpu" in note and "redis.max_connections" in note
