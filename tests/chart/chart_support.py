"""Helpers of the chart tier: the repository paths and a small Dockerfile reader.

The Dockerfile reader understands what our Dockerfile uses (parser directives, comments,
line continuations, ARG/ENV with ${VAR} substitution, FROM ... AS name, exec-form JSON);
anything else it meets makes the tests fail loudly rather than guess.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
CHART = REPO / "helm" / "bffgate"
HERE = Path(__file__).resolve().parent

_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def substitute(text: str, variables: dict[str, str]) -> str:
    """Docker's ${VAR} / $VAR substitution (unknown variables become empty, as in Docker)."""
    return _VAR.sub(lambda m: variables.get(m.group(1) or m.group(2), ""), text)


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str]:
        value = json.loads(self.args)
        assert isinstance(value, list), f"line {self.line}: {self.keyword} is not in exec form"
        return [str(v) for v in value]


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def one(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert len(found) == 1, f"expected one {keyword} in stage {self.name}, got {len(found)}"
        return found[0]


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise AssertionError(f"no stage named {name!r}")

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage_args(self, stage: Stage) -> dict[str, str]:
        """ARG values visible in a stage: declared there, defaulting to the global ones."""
        values: dict[str, str] = {}
        for ins in stage.all("ARG"):
            name, sep, default = ins.args.partition("=")
            values[name] = default if sep else self.global_args.get(name, "")
        return values


def parse_env(args: str, variables: dict[str, str]) -> dict[str, str]:
    """ENV k=v k2="v 2" (the legacy `ENV k v` form is refused)."""
    out: dict[str, str] = {}
    for word in shlex.split(args, posix=True):
        key, sep, value = word.partition("=")
        assert sep, f"ENV {args!r}: use the key=value form"
        out[key] = substitute(value, {**variables, **out})
    return out


def parse_dockerfile(path: Path = DOCKERFILE) -> Dockerfile:
    logical: list[tuple[int, str]] = []
    buf, start = "", 0
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buf):
            continue  # comments (also inside a continuation) and blank lines
        if not buf:
            start = n
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        logical.append((start, buf))
        buf = ""
    assert not buf, "Dockerfile ends inside a line continuation"

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line, text in logical:
        keyword, _, args = text.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = args.split()
            assert len(words) in (1, 3), f"line {line}: unsupported FROM {args!r}"
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=substitute(words[0], global_args), name=name))
        elif not stages:
            assert keyword == "ARG", f"line {line}: only ARG may precede the first FROM"
            key, _, default = args.partition("=")
            global_args[key] = default
        else:
            stages[-1].instructions.append(Instruction(keyword, args, line))
    return Dockerfile(global_args, stages)
