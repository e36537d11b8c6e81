"""OpenTelemetry tracing (the ``otel`` extra), off by default and free when off.

This module is the leaf the lower layers may call (it imports nothing of bffgate and no
OpenTelemetry): the one module-level check is ``_hooks``, None unless
``bffgate.telemetry.setup.Tracing`` turned tracing on in this process. Everything that
creates spans lives in the submodules and is imported only then:

- ``setup``   ``Tracing``: from ``telemetry.tracing`` and the OTEL_* environment, installs
  the wrappers below at assembly time (app.py); off, it returns what it is given, so the
  request path runs exactly the code it runs without this package.
- ``sdk``     the TracerProvider, its OTLP/HTTP (or console) exporter and resource.
- ``server``  the SERVER span of each public request; the browser's ``traceparent`` is
  continued only when trusted (``context.trusted_parent``).
- ``clients`` CLIENT spans: the store's Redis operations, the IdP calls (code exchange,
  refresh, token exchange, ...), the upstream call (which carries the span's
  ``traceparent``).
- ``context`` pure W3C trace-context helpers (parse, trust).
"""

from __future__ import annotations

from typing import Protocol


class Hooks(Protocol):
    """What the lower layers may ask of tracing while it is on."""

    def current_traceparent(self) -> str | None: ...

    def link_current_span(self, traceparent: str, kind: str) -> None: ...


_hooks: Hooks | None = None  # set once per process by setup.Tracing when tracing is on


def install(hooks: Hooks) -> None:
    global _hooks  # the one module-level switch, set once at startup
    _hooks = hooks


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span (to remember with a login), None when off."""
    return _hooks.current_traceparent() if _hooks is not None else None


def link_current_span(traceparent: object, kind: str) -> None:
    """Link the current span to the span of ``traceparent`` (a login's, at its callback);
    nothing when off or when the value is not a traceparent string."""
    if _hooks is not None and isinstance(traceparent, str):
        _hooks.link_current_span(traceparent, kind)
