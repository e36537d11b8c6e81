"""The probe's findings: one ``Check`` per step (name, ok, detail, duration), the run's JSON
line, and the scrubber that keeps every secret value the run saw out of it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from bffgate.doctor.report import Report

# doctor's check titles -> the probe's stable check names (JSON, metric label)
_DOCTOR_NAMES = (
    ("IdP discovery", "idp_discovery"),
    ("PKCE S256 advertised", "pkce_s256_advertised"),
    ("token endpoint auth method", "client_auth_method"),
    ("client credentials", "client_auth"),
    ("redirect URI", "redirect_uri_registered"),
    ("JWKS", "jwks"),
    ("clock skew vs IdP", "clock_skew"),
)
_MIN_SECRET = 6  # shorter values are not scrubbed (they would mangle ordinary words)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    duration_ms: float


@dataclass
class Findings:
    """The checks in the order they ran, and the secret values met on the way (code, state,
    nonce, challenge, cookies, password, client secret), scrubbed from every detail."""

    checks: list[Check] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    started: float = field(default_factory=time.perf_counter)

    def secret(self, *values: str | None) -> None:
        self.secrets.update(v for v in values if v and len(v) >= _MIN_SECRET)

    def add(self, name: str, ok: bool, detail: str, since: float) -> Check:
        check = Check(name, ok, detail, round((time.perf_counter() - since) * 1000, 1))
        self.checks.append(check)
        return check

    @property
    def healthy(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def scrub(self, text: str) -> str:
        for value in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(value, "***")
        return text

    def json_line(self) -> str:
        """The run as one JSON line: {"probe", "ok", "checks", "duration_ms"}."""
        doc = {
            "probe": "bffgate",
            "ok": self.healthy,
            "checks": [{"name": c.name, "ok": c.ok, "detail": self.scrub(c.detail),
                        "duration_ms": c.duration_ms} for c in self.checks],
            "duration_ms": round((time.perf_counter() - self.started) * 1000, 1),
        }
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)

    def text_lines(self) -> list[str]:
        """The run for a person: one line per check, then the verdict."""
        lines = [f"[{'ok' if c.ok else 'FAIL'}] {c.name}: {self.scrub(c.detail)} "
                 f"({c.duration_ms:.0f} ms)" for c in self.checks]
        failed = [c.name for c in self.checks if not c.ok]
        lines.append(f"probe failed: {', '.join(failed)}" if failed else "probe ok")
        return lines


class DoctorFindings(Report):
    """doctor's Report, collecting into ``Findings`` instead of printing: the probe runs
    doctor's IdP checks as they are. Each check's duration is the time since the previous
    one (or since ``begin()``)."""

    def __init__(self, findings: Findings) -> None:
        super().__init__()
        self.findings = findings
        self._mark = time.perf_counter()

    def begin(self) -> None:
        self._mark = time.perf_counter()

    def _record(self, what: str, ok: bool, detail: str) -> None:
        name = next((n for title, n in _DOCTOR_NAMES if what.startswith(title)), what)
        self.findings.add(name, ok, detail, self._mark)
        self._mark = time.perf_counter()

    def ok(self, what: str, detail: str = "") -> None:
        self._record(what, True, detail or what)

    def fail(self, what: str, where: str, cause: str, fix: str) -> None:
        self.failures += 1
        self._record(what, False, f"{what}: {where}: {cause}; {fix}")

    def note(self, what: str, detail: str) -> None:  # "cannot tell": not a failure
        self._record(what, True, f"{what}: {detail}")
