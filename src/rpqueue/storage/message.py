"""The task message: how a call is written to Redis and read back.

A message is one JSON object (protocol version 1, docs/PROTOCOL.md)::

    {"v": 1, "id": "...", "name": "module.function", "queue": "default",
     "args": [...], "kwargs": {...}}

and, when tracing is on, ``"trace": {"traceparent": "...", "tracestate": "..."}``.

Scripts never decode it: what they must change (attempts left, leases) is
kept in separate fields, so user arguments reach the task byte for byte.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 1024 * 1024
MAX_NESTING = 100

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class MalformedMessage(ValueError):
    """A message read from Redis that cannot be run; the reason says why."""


# Ids are cut from one base64 text of random bytes: 33 bytes make 44
# characters, two ids of 22 characters (132 random bits each, more than a
# uuid4's 122). Refilling 256 at a time makes an id cost a list pop.
_ID_BATCH = 128  # pairs
_ids: list[str] = []


def _refill_ids() -> None:
    text = base64.urlsafe_b64encode(os.urandom(33 * _ID_BATCH)).decode("ascii")
    fresh = [text[i:i + 22] for i in range(0, len(text), 22)]
    # Never starting with '-', which a command line would read as an option.
    _ids.extend("0" + i[1:] if i[0] == "-" else i for i in fresh)


def new_id() -> str:
    """A random 22-character URL-safe id (132 random bits)."""
    try:
        return _ids.pop()
    except IndexError:
        _refill_ids()
        return _ids.pop()


def new_ids(count: int) -> list[str]:
    """``count`` ids at once (execute_many)."""
    while len(_ids) < count:
        _refill_ids()
    out = _ids[-count:]
    del _ids[-count:]
    return out


# A forked child must not hand out the ids its parent will also use.
os.register_at_fork(after_in_child=_ids.clear)


def _depth(value: Any, limit: int) -> int:
    # Iterative so a hostile, deeply nested value cannot blow Python's stack.
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return depth
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _check_value(where: str, value: Any) -> None:
    try:
        _encoder.encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(f"{where} cannot be sent as JSON: {exc}") from None
    if _depth(value, MAX_NESTING) > MAX_NESTING:
        raise TypeError(f"{where} is nested deeper than {MAX_NESTING} levels")


_encode_str = json.encoder.encode_basestring
_ID_HEAD = '{"v":' + str(PROTOCOL_VERSION) + ',"id":'
_KWARGS = ',"kwargs":'
_TRACE = ',"trace":'

# Where a call's trace context comes from when the caller gives none: each
# source is called as source(task name, queue, task id) and returns the
# carrier to send (W3C "traceparent"/"tracestate") or None. Tracing
# (rpqueue.contrib.otel) adds one; with none, encoding costs nothing more.
TraceSource = Callable[[str, str, str], "Mapping[str, str] | None"]
_trace_sources: list[TraceSource] = []


def add_trace_source(source: TraceSource) -> None:
    """Have every call encoded in this process carry what ``source`` returns
    as its trace context (once, however often it is added)."""
    if source not in _trace_sources:
        _trace_sources.append(source)


def remove_trace_source(source: TraceSource) -> None:
    if source in _trace_sources:
        _trace_sources.remove(source)


def _trace_of(name: str, queue: str, taskid: str) -> dict[str, str] | None:
    carrier: dict[str, str] = {}
    for source in list(_trace_sources):
        try:
            got = source(name, queue, taskid)
        except Exception:  # a broken tracer must never stop a call from being queued
            continue
        if isinstance(got, Mapping):
            carrier.update(got)
    return _clean_trace(carrier)


def _clean_trace(value: Any) -> dict[str, str] | None:
    """The string entries of a trace carrier, None when there are none. A
    trace context is advice (W3C: an unusable one is ignored), never a
    reason to refuse a call."""
    if not isinstance(value, Mapping):
        return None
    out = {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}
    return out or None


@functools.lru_cache(maxsize=4096)
def _head(name: str, queue: str) -> str:
    return f',"name":{_encode_str(name)},"queue":{_encode_str(queue)},"args":'


def encode_call(
    taskid: str, name: str, queue: str, args: tuple[Any, ...], kwargs: dict[str, Any],
    trace: Mapping[str, str] | None = None,
) -> str:
    """Encode one call, or raise TypeError naming the argument JSON cannot carry.

    The text is the one ``json`` gives for the whole object; the fixed parts
    (name, queue) are encoded once per task and queue. ``trace``: the W3C
    trace context to send along (default: from the trace sources, if any).
    """
    carrier = _clean_trace(trace) if trace is not None else (
        _trace_of(name, queue, taskid) if _trace_sources else None)
    try:
        # Empty kwargs are left out (decode reads a missing "kwargs" as {}):
        # 12 bytes less per stored task keeps a no-op message in a smaller
        # allocation class of Redis's allocator.
        text = (_ID_HEAD + _encode_str(taskid) + _head(name, queue)
                + (_encoder.encode(list(args)) if args else "[]")
                + (_KWARGS + _encoder.encode(kwargs) if kwargs else "")
                + (_TRACE + _encoder.encode(carrier) if carrier else "") + "}")
    except (TypeError, ValueError, RecursionError):
        pass
    else:
        # Only a text with many brackets can be too deep: skip the walk otherwise.
        if text.count("[") + text.count("{") <= MAX_NESTING or _depth(
                {"args": list(args), "kwargs": kwargs}, MAX_NESTING + 2) <= MAX_NESTING + 2:
            return text
    # Find the culprit so the error names it.
    for i, arg in enumerate(args):
        _check_value(f"argument {i} of {name}()", arg)
    for key, arg in kwargs.items():
        if not isinstance(key, str):
            raise TypeError(f"keyword {key!r} of {name}() is not a string")
        _check_value(f"keyword argument {key!r} of {name}()", arg)
    raise TypeError(f"the arguments of {name}() cannot be sent as JSON")  # pragma: no cover


@dataclass
class Message:
    id: str
    name: str
    queue: str
    args: list[Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    # The W3C trace context of the call ("traceparent", "tracestate"), if sent.
    trace: dict[str, str] | None = None


def _text(raw: bytes | str) -> str:
    if isinstance(raw, str):
        if _lone_surrogates(raw):
            raise MalformedMessage("message holds a lone surrogate, which is not Unicode text")
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedMessage("message is not valid UTF-8") from None


def _lone_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# Python's json reads NaN, Infinity and -Infinity, and turns 1e400 into inf;
# none of them is JSON, and a task checking ``amount <= 0`` would let nan
# through. The Python client never writes them (allow_nan=False).
def _no_constant(name: str) -> Any:
    raise MalformedMessage(f"message holds {name}, which is not a JSON number")


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        shown = literal if len(literal) <= 40 else literal[:40] + "..."
        raise MalformedMessage(f"message holds the number {shown}, too large for a float")
    return value


# A lone surrogate can only come from a \uD800-\uDFFF escape (the text itself
# was checked to be UTF-8): only a text with such an escape needs the walk.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _lone_surrogates(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


_strict = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


def loads_strict(text: str) -> Any:
    """JSON as the protocol defines it: MalformedMessage (with the reason) for
    what Python's json accepts but JSON does not: NaN, Infinity, numbers too
    large for a float, and lone surrogates (no UTF-8 text can carry them)."""
    try:
        # One shared decoder: json.loads() with hooks builds a new one per
        # call, a tenth of a worker's Python time per task. A BOM is left to
        # json.loads for its own error message.
        body = (_strict.decode(text) if not text.startswith("\ufeff") else
                json.loads(text, parse_constant=_no_constant, parse_float=_finite))
    except MalformedMessage:
        raise
    except (ValueError, RecursionError) as exc:
        raise MalformedMessage(f"message is not valid JSON: {str(exc)[:200]}") from None
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(body):
        raise MalformedMessage("message holds a lone surrogate (\\uD800-\\uDFFF), which is "
                               "not Unicode text")
    return body


def decode(raw: bytes | str, expect_id: str | None = None) -> Message:
    """Decode a message read from Redis; anything unusable is MalformedMessage.

    Strict: NaN, Infinity, numbers that overflow a float and lone surrogates
    are refused with the reason, as is anything that is not a message object.
    """
    text = _text(raw)
    body = loads_strict(text)
    if not isinstance(body, dict):
        raise MalformedMessage("message is not a JSON object")
    # The limit encode_call keeps (the message object and its args/kwargs
    # add two levels): only a text with that many brackets needs the walk.
    if (text.count("[") + text.count("{") > MAX_NESTING
            and _depth(body, MAX_NESTING + 2) > MAX_NESTING + 2):
        raise MalformedMessage(f"message is nested deeper than {MAX_NESTING} levels")
    version = body.get("v", PROTOCOL_VERSION)
    if version != PROTOCOL_VERSION:
        # Cut short: whoever wrote the message chose this text, and it goes to logs.
        shown = repr(version)
        shown = shown if len(shown) <= 40 else shown[:40] + "..."
        raise MalformedMessage(f"message has unsupported protocol version {shown}")
    name, args, kwargs = body.get("name"), body.get("args", []), body.get("kwargs", {})
    if not isinstance(name, str) or not name:
        raise MalformedMessage("message has no task name")
    if not isinstance(args, list):
        raise MalformedMessage("message 'args' is not a list")
    if not isinstance(kwargs, dict):
        raise MalformedMessage("message 'kwargs' is not an object")
    taskid = body.get("id", expect_id)
    if not isinstance(taskid, str):
        raise MalformedMessage("message 'id' is not a string")
    queue = body.get("queue", "")
    trace = body.get("trace")
    # Most messages carry no trace: skip _clean_trace's Mapping (ABC) check.
    return Message(taskid, name, queue if isinstance(queue, str) else "", args, kwargs,
                   None if trace is None else _clean_trace(trace))


def encode_result(name: str, value: Any) -> str:
    """A task's result as JSON, or TypeError saying why it cannot be saved."""
    try:
        text = _encoder.encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(f"the result of {name}() cannot be saved as JSON: {exc}") from None
    if _lone_surrogates(text):
        # Redis stores UTF-8: writing this would fail after the task ran.
        raise TypeError(f"the result of {name}() holds a lone surrogate, which is not "
                        f"Unicode text")
    return text


def decode_result(raw: bytes | str | None) -> Any:
    if raw is None:
        return None
    return json.loads(raw)
