"""Tracing (issue 22): the W3C trace context travels in the message, so the
CONSUMER span a real worker process records is a child of the PRODUCER span
of the process that queued the call; messages without it still run."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from support.worker import Workers, wait_until

import rpqueue
from rpqueue.contrib import otel
from rpqueue.storage import reads
from rpqueue.storage.message import add_trace_source, decode, encode_call, remove_trace_source

MODS = Path(__file__).parent / "ecosystemmods"
TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


@pytest.fixture
def exporter(app: rpqueue.RPQueue) -> Iterator[InMemorySpanExporter]:
    """This (producer) process traced into memory with the SDK."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    otel.instrument(app, tracer_provider=provider)
    # The tests start their own spans with the same provider.
    memory.provider = provider  # type: ignore[attr-defined]
    yield memory
    otel.uninstrument(app)


@pytest.fixture
def traced_worker(monkeypatch: pytest.MonkeyPatch, workers: Workers, redis_url: str,
                  tmp_path: Path) -> Path:
    """A worker whose spans go to a file, one JSON object per line."""
    monkeypatch.syspath_prepend(str(MODS))
    spans = tmp_path / "worker-spans.jsonl"
    workers.start("trace_tasks", "traced", env={"PYTHONPATH": str(MODS),
                                                "ECO_SPAN_FILE": str(spans)})
    return spans


def _spans(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _hex(value: str) -> str:
    return value[2:] if value.startswith("0x") else value


def test_the_task_span_is_a_child_of_the_enqueue_span_across_processes(
        app: rpqueue.RPQueue, exporter: InMemorySpanExporter, traced_worker: Path) -> None:
    import trace_tasks

    tracer = exporter.provider.get_tracer("test")  # type: ignore[attr-defined]
    with tracer.start_as_current_span("request") as request:
        handle = trace_tasks.traced.execute(7)
    (producer,) = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.PRODUCER]
    assert producer.name == "send trace_tasks.traced"
    assert producer.parent is not None and producer.parent.span_id == request.get_span_context().span_id
    assert producer.attributes is not None
    assert producer.attributes["messaging.destination.name"] == "traced"
    assert producer.attributes["messaging.message.id"] == handle.taskid

    seen = wait_until(lambda: handle.result, 30, message="the traced task's result")
    trace_id = format(producer.context.trace_id, "032x")
    # In the worker: the task ran in a CONSUMER span, child of the producer's.
    assert seen["kind"] == "CONSUMER"
    assert seen["trace_id"] == trace_id
    assert seen["parent_id"] == format(producer.context.span_id, "016x")
    # A span the task starts is a child of the CONSUMER span.
    assert seen["inner"]["trace_id"] == trace_id
    assert seen["inner"]["parent_id"] == seen["span_id"]
    # And the worker exported it, ended, with the messaging attributes.
    consumer = wait_until(lambda: [s for s in _spans(traced_worker)
                                   if s["kind"] == "SpanKind.CONSUMER"], 15,
                          message="the worker's CONSUMER span in its span file")[0]
    assert consumer["name"] == "process trace_tasks.traced"
    assert _hex(consumer["context"]["trace_id"]) == trace_id
    assert _hex(consumer["parent_id"]) == seen["parent_id"]
    assert consumer["attributes"]["messaging.message.id"] == handle.taskid


def test_a_failing_task_marks_its_span(app: rpqueue.RPQueue, exporter: InMemorySpanExporter,
                                       traced_worker: Path) -> None:
    import trace_tasks

    trace_tasks.broken.execute()
    (producer,) = exporter.get_finished_spans()
    consumer = wait_until(lambda: [s for s in _spans(traced_worker)
                                   if s["kind"] == "SpanKind.CONSUMER"], 15,
                          message="the worker's CONSUMER span")[0]
    assert _hex(consumer["parent_id"]) == format(producer.context.span_id, "016x")
    assert consumer["status"]["status_code"] == "ERROR"
    assert "RuntimeError: traced failure" in consumer["status"]["description"]
    assert any(e["name"] == "exception" for e in consumer["events"])


def test_a_call_queued_without_trace_context_still_runs_in_a_new_trace(
        app: rpqueue.RPQueue, traced_worker: Path) -> None:
    import trace_tasks

    # No instrumentation in this producer: the message has no "trace" field.
    handle = trace_tasks.traced.execute(1)
    seen = wait_until(lambda: handle.result, 30, message="the untraced task's result")
    assert seen["kind"] == "CONSUMER"
    assert seen["parent_id"] is None  # a root span: a trace of its own


def test_the_message_carries_the_w3c_trace_context() -> None:
    carrier = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
               "tracestate": "congo=t61rcWkgMzE"}

    def source(name: str, queue: str, taskid: str) -> dict[str, str]:
        assert (name, queue, taskid) == ("m.f", "q", "id1")
        return carrier

    add_trace_source(source)
    try:
        text = encode_call("id1", "m.f", "q", (1,), {"k": 2})
    finally:
        remove_trace_source(source)
    assert json.loads(text)["trace"] == carrier
    assert decode(text).trace == carrier
    assert TRACEPARENT.fullmatch(carrier["traceparent"])
    # Messages from producers without tracing, and unusable trace fields, still read.
    assert decode('{"v":1,"id":"a","name":"m.f","queue":"q","args":[]}').trace is None
    assert decode('{"v":1,"id":"a","name":"m.f","queue":"q","args":[],"trace":7}').trace is None
    assert "trace" not in json.loads(encode_call("id2", "m.f", "q", (), {}))


def test_a_broken_trace_source_never_stops_a_call() -> None:
    def broken(name: str, queue: str, taskid: str) -> dict[str, str]:
        raise RuntimeError("tracer down")

    add_trace_source(broken)
    try:
        assert decode(encode_call("id3", "m.f", "q", (), {})).trace is None
    finally:
        remove_trace_source(broken)


def test_the_producer_puts_a_traceparent_in_the_message(
        app: rpqueue.RPQueue, exporter: InMemorySpanExporter,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(MODS))
    import trace_tasks

    handle = trace_tasks.traced.execute(3, delay=60)
    (raw,), _ = reads.messages(app.ctx.store, "traced", [handle.taskid])
    # Stored as "<ready time ms>:<message>" (storage/keys.py).
    sent = json.loads(raw.decode().partition(":")[2])["trace"]
    (producer,) = exporter.get_finished_spans()
    ctx = producer.context
    assert sent["traceparent"] == f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"
    assert TRACEPARENT.fullmatch(sent["traceparent"])
