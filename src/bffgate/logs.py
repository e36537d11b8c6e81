"""The structlog pipeline: context, timestamps, redaction, JSON (or console) output.

Built once by ``configure_logging`` and cached (issue #12: one audit line costs a few µs):
the processor list and the sink are long-lived objects that a reconfiguration updates in
place, bound loggers are cached per name until the next ``configure_logging``, JSON is
rendered by orjson straight to bytes and written with one write per line. Redaction runs
on every line; it skips only values that cannot hold a secret (numbers, booleans, None,
enum members, and on audit lines the catalogue fields the gateway itself produces).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import select
import sys
import threading
import time
from collections.abc import MutableMapping
from typing import Any, TextIO

import orjson
import structlog

from bffgate.log_context import merge_request
from bffgate.redaction import AUDIT_EVENT_NAMES as AUDIT_EVENT_NAMES  # re-exported
from bffgate.redaction import AUDIT_SAFE_FIELDS as AUDIT_SAFE_FIELDS
from bffgate.redaction import REDACTED as REDACTED
from bffgate.redaction import SECRET_KEYS as SECRET_KEYS
from bffgate.redaction import on_redaction as on_redaction
from bffgate.redaction import redact as redact
from bffgate.redaction import remove_redaction_hook as remove_redaction_hook

_stamp_cache: tuple[int, str] = (-1, "")


def add_timestamp(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: ``ts`` as ISO-8601 UTC with µs and ``Z`` (the date part is
    formatted once a second, not per line)."""
    global _stamp_cache
    now = time.time()
    sec = int(now)
    cached = _stamp_cache
    if cached[0] != sec:
        cached = _stamp_cache = (sec, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(sec)))
    event_dict["ts"] = f"{cached[1]}{int((now - sec) * 1_000_000):06d}Z"
    return event_dict


def format_exc_info(logger: Any, name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog's format_exc_info, called only for the lines that carry ``exc_info``."""
    if "exc_info" in event_dict:
        return structlog.processors.format_exc_info(logger, name, event_dict)
    return event_dict


def _fallback(value: Any) -> Any:
    return repr(value)


def render_json(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> bytes:
    """structlog processor: the line as UTF-8 JSON bytes with its newline (orjson)."""
    try:
        return orjson.dumps(event_dict, default=_fallback,
                            option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS)
    except TypeError:  # e.g. an int beyond 64 bits: the standard library renders it
        return (json.dumps(event_dict, default=repr) + "\n").encode()


class LineSink:
    """Where rendered lines go: straight to the stream's file descriptor when it has one (no
    text or buffer layer: no line split across writes but by the kernel), else the stream's
    write(). By default each line is written at once; with ``hold(seconds)``
    (``log.flush_interval``) lines written on an event loop are held up to that long (or
    64 KiB) and leave in one write: the per-line system call is the larger part of an audit
    line's cost (Envoy flushes its access logs every second the same way). ``flush()``
    writes what is held: at shutdown, and when the sink is retargeted."""

    def __init__(self, stream: TextIO) -> None:
        self._hold = 0.0
        self._held: list[bytes] = []
        self._held_size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._lock = threading.Lock()  # a library may log from another thread
        self.retarget(stream)

    @property
    def stream(self) -> TextIO:
        return self._text

    def retarget(self, stream: TextIO) -> None:
        self.flush()
        self._text = stream
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):  # StringIO, pytest's capture, ...
            fd = -1
        if fd >= 0:
            stream.flush()  # what the stream's own layers hold goes first
        self._fd = fd

    def hold(self, seconds: float) -> None:
        """Hold lines up to ``seconds`` (0: write each at once)."""
        self.flush()
        self._hold = max(0.0, seconds)

    def msg(self, line: bytes | str) -> None:
        if self._fd >= 0 and type(line) is bytes:
            if self._hold > 0 and self._held_on_loop(line):
                return
            self._write(line)
            return
        self.flush()
        text = line.decode() if isinstance(line, bytes) else line + "\n"
        self._text.write(text)
        self._text.flush()

    def _held_on_loop(self, line: bytes) -> bool:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop in this thread: written at once
            self.flush()
            return False
        with self._lock:
            self._held.append(line)
            self._held_size += len(line)
            full = self._held_size >= _HOLD_BYTES
            if not full and self._timer is None:
                self._timer = loop.call_later(self._hold, self.flush)
        if full:
            self.flush()
        return True

    def flush(self) -> None:
        """Write the held lines, in order, in one write."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if not self._held:
                return
            data = b"".join(self._held)
            self._held.clear()
            self._held_size = 0
        self._write(data)

    def _write(self, data: bytes) -> None:
        try:
            written = os.write(self._fd, data)
        except BlockingIOError:  # a non-blocking descriptor with a full pipe
            written = 0
        if written != len(data):
            self._rest(memoryview(data)[written:])

    def _rest(self, rest: memoryview) -> None:
        """A short write (a signal, a full non-blocking pipe): the rest, waiting if need be."""
        while rest:
            try:
                rest = rest[os.write(self._fd, rest):]
            except BlockingIOError:
                select.select([], [self._fd], [])

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


# Long-lived: structlog and every cached logger hold these very objects, so a later
# configure_logging (tests, `structlog.testing.capture_logs`) is seen by all of them.
_PROCESSORS: list[Any] = []
_HOLD_BYTES = 64 * 1024
_SINK = LineSink(sys.stdout)
atexit.register(_SINK.flush)
os.register_at_fork(before=_SINK.flush)  # a forked worker must not write the parent's lines


def flush() -> None:
    """Write the log lines held back (log.flush_interval): before a process ends."""
    _SINK.flush()
_loggers: dict[str, Any] = {}
_configured = False
_min_level = 0
_LEVELS = logging.getLevelNamesMapping()
_METHOD_LEVELS = {name.lower(): number for name, number in _LEVELS.items()} | {"warn": 30}


class _LibraryRecords(logging.Handler):
    """Records of the libraries' own stdlib loggers (aiohttp, redis-py, httpx, uvicorn,
    OpenTelemetry) at WARNING and above go through this pipeline too: one JSON line each,
    redacted like every other, instead of Python's last-resort handler printing them to
    stderr as plain text (where a library quoting a request header, say OpenTelemetry's
    tracestate parser, would write client-chosen text unredacted)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = record.levelname.lower()
            write(level if level in _METHOD_LEVELS else "warning",
                  {"event": "library.log", "logger": record.name,
                   "message": record.getMessage()[:2048]})
        except Exception:  # a handler never raises into the library that logged
            self.handleError(record)


_LIBRARY_RECORDS = _LibraryRecords(logging.WARNING)


def configure_logging(level: str = "info", fmt: str = "json", stream: TextIO | None = None, *,
                      audit_format: str = "json", flush_interval: float = 0.0) -> None:
    """Configure structlog for the process. Redaction runs right before rendering."""
    global _configured, _min_level
    chain: list[Any] = [structlog.contextvars.merge_contextvars, merge_request,
                        structlog.processors.add_log_level, add_timestamp]
    if audit_format == "ocsf":
        from bffgate.audit_ocsf import to_ocsf

        chain.append(to_ocsf)
    chain += [format_exc_info, redact]
    chain.append(render_json if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False))
    _PROCESSORS[:] = chain
    _SINK.retarget(stream or sys.stdout)
    _SINK.hold(flush_interval)
    _loggers.clear()
    structlog.configure(
        processors=_PROCESSORS,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level.upper()]),
        logger_factory=lambda *_args: _SINK,
        cache_logger_on_first_use=True,
    )
    _configured, _min_level = True, _LEVELS[level.upper()]
    if _LIBRARY_RECORDS not in logging.root.handlers:
        logging.root.addHandler(_LIBRARY_RECORDS)


def reset_logging() -> None:
    """Back to structlog's defaults (tests): drops the cached loggers."""
    global _configured
    _loggers.clear()
    _configured = False
    _SINK.hold(0)
    logging.root.removeHandler(_LIBRARY_RECORDS)
    structlog.reset_defaults()


def configured_stream() -> TextIO | None:
    """The stream configure_logging writes to, while its configuration is the one structlog
    runs (None before it, after reset_logging or once someone configured structlog anew)."""
    if not _configured or structlog.get_config()["processors"] is not _PROCESSORS:
        return None
    return _SINK.stream


def get_logger(name: str = "bffgate") -> Any:
    """The bound logger for ``name``, built once per configuration (structlog's lazy proxy
    before ``configure_logging``, so an unconfigured process behaves as structlog does)."""
    logger = _loggers.get(name)
    if logger is None:
        if not _configured:
            return structlog.get_logger(name)
        logger = _loggers[name] = structlog.get_logger(name).bind()
    return logger


def enabled(level: str) -> bool:
    """Would a line at ``level`` be written? (Always, before configure_logging.)"""
    return not _configured or _METHOD_LEVELS[level] >= _min_level


def write(level: str, event_dict: dict[str, Any]) -> None:
    """One line through the pre-built chain, as a bound logger's ``level`` method would
    write it, minus its keyword re-packing (the audit path). ``event_dict`` is consumed."""
    if not _configured:
        fields = dict(event_dict)
        getattr(structlog.get_logger("bffgate"), level)(fields.pop("event"), **fields)
        return
    if _METHOD_LEVELS[level] < _min_level:
        return
    line: Any = event_dict
    try:
        for processor in _PROCESSORS:
            line = processor(_SINK, level, line)
    except structlog.DropEvent:
        return
    _SINK.msg(line)
