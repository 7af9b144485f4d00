"""Traced tasks (test_tracing.py). In a worker (ECO_SPAN_FILE set) the
default app is instrumented and every ended span is written to that file,
one JSON object per line."""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import trace

from rpqueue import task

_tracer = trace.get_tracer("trace_tasks")

if os.environ.get("ECO_SPAN_FILE"):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    import rpqueue
    from rpqueue.contrib import otel

    _out = open(os.environ["ECO_SPAN_FILE"], "a", buffering=1)  # lives as long as the process
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(
        out=_out, formatter=lambda span: span.to_json(indent=None) + "\n")))
    _tracer = provider.get_tracer("trace_tasks")
    otel.instrument(rpqueue.default_app(), tracer_provider=provider)


def _ids() -> dict[str, Any]:
    span = trace.get_current_span()
    ctx = span.get_span_context()
    parent = getattr(span, "parent", None)
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x"),
            "parent_id": format(parent.span_id, "016x") if parent is not None else None,
            "kind": getattr(span, "kind", trace.SpanKind.INTERNAL).name}


@task(queue="traced", save_results=60)
def traced(x: int) -> dict[str, Any]:
    """Returns the ids of the span it runs in, and of a span it starts itself."""
    seen = _ids()
    with _tracer.start_as_current_span("inner work"):
        seen["inner"] = _ids()
    return seen


@task(queue="traced")
def broken() -> None:
    raise RuntimeError("traced failure")
