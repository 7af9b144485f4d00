"""OpenTelemetry tracing for rpqueue (``pip install rpqueue[otel]``).

``instrument(app)`` makes every call queued in this process carry the W3C
trace context of a PRODUCER span (``send <task>``), and every task the
app's workers run a CONSUMER span (``process <task>``) that is a child of
it, across processes and machines. Spans a task starts are children of its
CONSUMER span. A call queued without a trace context (an older producer, a
producer without tracing) gets a CONSUMER span that starts a new trace.

    from rpqueue.contrib import otel
    otel.instrument(app)            # in producers and in the worker's module

Spans go to the tracer provider given, else the global one
(``opentelemetry.trace.set_tracer_provider``); the context is written and
read with the global propagator (W3C trace context by default). The
PRODUCER span is started and ended as the call is encoded: it marks the
send, and its context is what the message carries.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextvars import Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from ..storage.message import add_trace_source, remove_trace_source

__all__ = ["TracingHooks", "instrument", "uninstrument"]

SYSTEM = "rpqueue"


def _tracer(provider: trace.TracerProvider | None) -> trace.Tracer:
    from .. import __version__

    return trace.get_tracer("rpqueue", __version__, tracer_provider=provider)


class _Producer:
    """The trace source: a PRODUCER span per call, its context as the carrier."""

    def __init__(self, provider: trace.TracerProvider | None) -> None:
        self.tracer = _tracer(provider)

    def __call__(self, name: str, queue: str, taskid: str) -> Mapping[str, str] | None:
        attributes = {"messaging.system": SYSTEM, "messaging.operation.type": "send",
                      "messaging.destination.name": queue, "messaging.message.id": taskid,
                      "rpqueue.task.name": name}
        with self.tracer.start_as_current_span(f"send {name}", kind=SpanKind.PRODUCER,
                                               attributes=attributes):
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            return carrier


class TracingHooks:
    """App hooks that run each task inside a CONSUMER span (see ``instrument``)."""

    def __init__(self, provider: trace.TracerProvider | None = None) -> None:
        self.tracer = _tracer(provider)
        self._live: dict[int, tuple[trace.Span, Token[otel_context.Context],
                                    otel_context.Context]] = {}
        self._lock = threading.Lock()

    def before_task(self, running: Any) -> None:
        parent = propagate.extract(running.trace or {})
        attributes = {"messaging.system": SYSTEM, "messaging.operation.type": "process",
                      "messaging.destination.name": running.queue,
                      "messaging.message.id": running.taskid,
                      "rpqueue.task.name": running.task.name}
        span = self.tracer.start_span(f"process {running.task.name}", context=parent,
                                      kind=SpanKind.CONSUMER, attributes=attributes)
        active = trace.set_span_in_context(span, parent)
        token = otel_context.attach(active)
        with self._lock:
            self._live[id(running)] = (span, token, active)

    def after_task(self, running: Any, result: Any, error: BaseException | None) -> None:
        with self._lock:
            entry = self._live.pop(id(running), None)
        if entry is None:
            return
        span, token, active = entry
        if error is not None:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.end()
        # An async task's hooks run in two contexts (the task's copy, then the
        # loop's): the token only belongs to the one it was made in.
        if otel_context.get_current() is active:
            otel_context.detach(token)


_installed: dict[int, tuple[TracingHooks, _Producer]] = {}


def instrument(app: Any, tracer_provider: trace.TracerProvider | None = None) -> TracingHooks:
    """Trace the calls this process queues and the tasks ``app`` runs.

    ``app``: an RPQueue (or its Context). Idempotent per app; returns the
    hooks added. Queuing is traced for every app of the process (the trace
    context is added where calls are encoded).
    """
    ctx = getattr(app, "ctx", app)
    if id(ctx) in _installed:
        return _installed[id(ctx)][0]
    hooks, producer = TracingHooks(tracer_provider), _Producer(tracer_provider)
    ctx.hooks.add(hooks)
    add_trace_source(producer)
    _installed[id(ctx)] = (hooks, producer)
    return hooks


def uninstrument(app: Any) -> None:
    """Undo ``instrument(app)``."""
    ctx = getattr(app, "ctx", app)
    entry = _installed.pop(id(ctx), None)
    if entry is not None:
        ctx.hooks.remove(entry[0])
        remove_trace_source(entry[1])
