"""The process's TracerProvider, from the standard OTEL_* environment (imported only when
``telemetry.tracing = true``).

- exporter: ``OTEL_TRACES_EXPORTER`` = ``otlp`` (default), ``console`` or ``none``, or a
  comma list of them. OTLP is HTTP/protobuf (the ``otel`` extra ships that exporter):
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` (``/v1/traces`` appended) or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (as is), ``..._HEADERS``, ``..._TIMEOUT``,
  ``..._CERTIFICATE``, ``..._COMPRESSION`` are read by the exporter itself;
  ``OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL`` other than ``http/protobuf`` is an error.
- resource: ``service.name`` = ``bffgate`` unless ``OTEL_SERVICE_NAME`` or
  ``OTEL_RESOURCE_ATTRIBUTES`` say otherwise; ``service.version`` = bffgate's.
- sampler: ``OTEL_TRACES_SAMPLER`` / ``..._ARG`` (default ``parentbased_always_on``);
  batching: ``OTEL_BSP_*``. Both read by the SDK.

Set up once per process (a second Gateway in the same process shares the provider). The
SDK flushes the batch at interpreter exit (``bffgate serve`` exits on SIGTERM).
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
)

from bffgate import __version__

EXPORTERS = ("otlp", "console", "none")
_provider: TracerProvider | None = None


class TracingSetupError(ValueError):
    """A tracing setting (an OTEL_* variable) that cannot work; the message names it."""


def _exporter_names(environ: Mapping[str, str]) -> list[str]:
    raw = environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in EXPORTERS]
    if unknown:
        msg = (f"OTEL_TRACES_EXPORTER: {', '.join(unknown)} is not supported "
               f"(use otlp, console or none)")
        raise TracingSetupError(msg)
    return names


def check_protocol(environ: Mapping[str, str]) -> None:
    for var in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = environ.get(var, "").strip()
        if value:
            if value != "http/protobuf":
                msg = (f"{var}: {value!r} is not supported; the otel extra exports "
                       f"OTLP over HTTP: http/protobuf (port 4318)")
                raise TracingSetupError(msg)
            return


def provider(environ: Mapping[str, str]) -> TracerProvider:
    """The process's provider, made (and set as the global one) on the first call."""
    global _provider  # one provider per process
    names = _exporter_names(environ)
    if "otlp" in names:
        check_protocol(environ)
    if _provider is not None:
        return _provider
    resource = Resource.create({"service.name": "bffgate", "service.version": __version__})
    resource = resource.merge(OTELResourceDetector().detect())  # OTEL_* wins over defaults
    made = TracerProvider(resource=resource)
    if "otlp" in names:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        made.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if "console" in names:
        made.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(made)
    _provider = made
    return made


def tracer(environ: Mapping[str, str]) -> trace.Tracer:
    return provider(environ).get_tracer("bffgate", __version__)


def flush(timeout_millis: int) -> None:
    if _provider is not None:
        _provider.force_flush(timeout_millis)
