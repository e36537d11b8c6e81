"""compose.yaml (gateway + Redis + dev IdP for local development): valid against the Compose
Specification's JSON Schema (vendored under compose-spec/), and consistent with itself: the
gateway reads the config the dev IdP writes, and that config, with the gateway's environment
overrides, passes the real loader."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bffgate.config import load_settings
from bffgate.demo.devconfig import render_config

pytestmark = pytest.mark.chart

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
SCHEMA = Path(__file__).resolve().parent / "compose-spec" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    # The schema says draft 2019-09 (with a '#'-suffixed URI jsonschema does not map).
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


def _option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def _mount(service: dict[str, Any], volume: str) -> tuple[str, bool]:
    """Where a service mounts a named volume (short syntax), and whether read-only."""
    for entry in service.get("volumes", []):
        parts = entry.split(":")
        if parts[0] == volume:
            return parts[1], parts[2:] == ["ro"]
    raise AssertionError(f"{volume} not mounted")


def test_compose_is_valid_against_the_compose_specification(compose, validator) -> None:
    errors = sorted(validator.iter_errors(compose), key=str)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_schema_check_is_not_vacuous(compose, validator) -> None:
    """A misspelt service key and a wrong type are caught by the same validator."""
    broken = copy.deepcopy(compose)
    broken["services"]["gateway"]["netwrk_mode"] = "host"
    broken["services"]["redis"]["healthcheck"]["retries"] = "many"
    messages = [e.message for e in validator.iter_errors(broken)]
    assert any("netwrk_mode" in m for m in messages), messages
    assert any("'many' is not of type 'number'" in m for m in messages), messages


def test_gateway_redis_and_dev_idp_all_on_loopback(compose) -> None:
    services = compose["services"]
    assert set(services) == {"gateway", "redis", "idp"}
    assert all(s["network_mode"] == "host" for s in services.values())
    redis_cmd = services["redis"]["command"]
    assert _option(redis_cmd, "--bind") == "127.0.0.1"  # never open on the LAN, no password
    assert services["idp"]["command"][:2] == ["demo", "--idp-only"]
    assert services["gateway"]["depends_on"] == {
        "redis": {"condition": "service_healthy"}, "idp": {"condition": "service_healthy"}}
    assert services["gateway"]["read_only"] is True


def test_the_gateway_reads_the_config_the_idp_writes(compose) -> None:
    """Same volume; the file the IdP writes is the path the image's default command reads."""
    idp, gateway = compose["services"]["idp"], compose["services"]["gateway"]
    written = Path(_option(idp["command"], "--write-config"))
    idp_mount, _ = _mount(idp, "devconfig")
    gw_mount, read_only = _mount(gateway, "devconfig")
    assert written.parent == Path(idp_mount)
    assert read_only
    cmd = re.search(r'^CMD \["serve", "--config", "([^"]+)"\]$',
                    (ROOT / "Dockerfile").read_text(encoding="utf-8"), re.MULTILINE)
    assert cmd is not None and "command" not in gateway
    assert Path(gw_mount) / written.name == Path(cmd.group(1))


def test_the_resulting_gateway_config_loads(compose, tmp_path: Path) -> None:
    """What the dev IdP renders for its command line, with the gateway's BFFGATE_*
    environment on top, passes the real loader and points at this file's Redis and IdP."""
    services = compose["services"]
    idp_cmd = services["idp"]["command"]
    port = int(_option(idp_cmd, "--port"))
    issuer = f"http://127.0.0.1:{port}"
    config = tmp_path / "bffgate.toml"
    config.write_text(render_config(issuer, "dev-idp-secret-" + "x" * 24,
                                    _option(idp_cmd, "--redirect-uri"),
                                    _option(idp_cmd, "--upstream")))
    env = {k: str(v) for k, v in services["gateway"]["environment"].items()}
    settings = load_settings(config, environ=env)
    assert settings.oidc.issuer == issuer
    assert f"127.0.0.1:{port}/" in " ".join(services["idp"]["healthcheck"]["test"])
    assert settings.session.store == "redis"
    redis_port = _option(services["redis"]["command"], "--port")
    assert settings.redis.url.get() == f"redis://127.0.0.1:{redis_port}/0"
    assert services["redis"]["healthcheck"]["test"][-3:] == ["-p", redis_port, "ping"]
    assert settings.redirect_uri == _option(idp_cmd, "--redirect-uri")
    assert [(r.prefix, r.upstream, r.token) for r in settings.routes] == [
        ("/api", "http://127.0.0.1:8081", "user"), ("/", "http://127.0.0.1:5173", "none")]
