"""server.workers and `bffgate serve --workers`: accepted forms, refused ones named by key
(or option) with what to do, and what "auto" means."""

from __future__ import annotations

import os

import pytest

from bffgate.cli import build_parser
from bffgate.workers import worker_count
from support.config_cases import load, problems

REDIS = {"session": {"store": "redis"}}


def test_default_is_one_process() -> None:
    assert load().server.workers == 1


@pytest.mark.parametrize(("raw", "expected"), [
    (1, 1), (4, 4), ("auto", "auto"), ("AUTO", "auto"), (" auto ", "auto"), ("3", 3),
])
def test_accepted_values(raw: object, expected: object) -> None:
    assert load({"server": {"workers": raw}, **REDIS}).server.workers == expected


@pytest.mark.parametrize(("env", "expected"), [("2", 2), ("auto", "auto")])
def test_from_the_environment(env: str, expected: object) -> None:
    settings = load(REDIS, environ={"BFFGATE_SERVER__WORKERS": env})
    assert settings.server.workers == expected


@pytest.mark.parametrize(("raw", "message"), [
    (0, 'server.workers: must be 1 or more, or "auto" (one per core); got 0'),
    (-2, 'server.workers: must be 1 or more, or "auto" (one per core); got -2'),
    ("many", "server.workers: expected an integer or \"auto\", got 'many'"),
    (1.5, 'server.workers: expected an integer or "auto", got 1.5'),
    (True, 'server.workers: expected an integer or "auto", got True'),
    ("2.0", "server.workers: expected an integer or \"auto\", got '2.0'"),
])
def test_refused_values_name_the_key(raw: object, message: str) -> None:
    assert problems({"server": {"workers": raw}, **REDIS}) == [message]


@pytest.mark.parametrize("workers", [2, "auto"])
def test_more_than_one_worker_needs_the_redis_store(workers: object) -> None:
    assert problems({"server": {"workers": workers}, "session": {"store": "memory"}}) == [
        "server.workers: must be 1 with session.store = memory (each worker process would "
        "have its own sessions); use redis"]
    assert problems({"server": {"workers": 1}, "session": {"store": "memory"}}) == []


def test_auto_is_the_cores_this_process_may_use() -> None:
    assert worker_count("auto") == len(os.sched_getaffinity(0))
    assert worker_count(3) == 3


@pytest.mark.parametrize(("argv", "expected"), [
    (["serve"], None), (["serve", "--workers", "4"], 4), (["serve", "--workers", "auto"], "auto"),
])
def test_serve_option(argv: list[str], expected: object) -> None:
    assert build_parser().parse_args(argv).workers == expected


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5", "²"])
def test_serve_option_refused(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["serve", "--workers", bad])
    assert exc.value.code == 2
    assert (f"argument --workers: expected a number of worker processes (1 or more) or "
            f"\"auto\" (one per core), got {bad!r}") in capsys.readouterr().err
