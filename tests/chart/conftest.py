"""Fixtures of the chart tier (Dockerfile and Helm chart checks)."""

from __future__ import annotations

import pytest
from chart_support import DOCKERFILE, Dockerfile, parse_dockerfile


@pytest.fixture(scope="session")
def dockerfile() -> Dockerfile:
    assert DOCKERFILE.is_file(), "Dockerfile missing at the repository root"
    return parse_dockerfile(DOCKERFILE)
