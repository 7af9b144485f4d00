"""The task message: how a call is written to Redis and read back.

A message is one JSON object (protocol version 1, docs/PROTOCOL.md)::

    {"v": 1, "id": "...", "name": "module.function", "queue": "default",
     "args": [...], "kwargs": {...}}

Scripts never decode it: what they must change (attempts left, leases) is
kept in separate fields, so user arguments reach the task byte for byte.
"""

from __future__ import annotations

import base64
import functools
import json
import os
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


@functools.lru_cache(maxsize=4096)
def _head(name: str, queue: str) -> str:
    return f',"name":{_encode_str(name)},"queue":{_encode_str(queue)},"args":'


def encode_call(
    taskid: str, name: str, queue: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str:
    """Encode one call, or raise TypeError naming the argument JSON cannot carry.

    The text is the one ``json`` gives for the whole object; the fixed parts
    (name, queue) are encoded once per task and queue.
    """
    try:
        # Empty kwargs are left out (decode reads a missing "kwargs" as {}):
        # 12 bytes less per stored task keeps a no-op message in a smaller
        # allocation class of Redis's allocator.
        text = (_ID_HEAD + _encode_str(taskid) + _head(name, queue)
                + (_encoder.encode(list(args)) if args else "[]")
                + (_KWARGS + _encoder.encode(kwargs) + "}" if kwargs else "}"))
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


def _text(raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedMessage("message is not valid UTF-8") from None


def decode(raw: bytes | str, expect_id: str | None = None) -> Message:
    """Decode a message read from Redis; anything unusable is MalformedMessage."""
    text = _text(raw)
    try:
        body = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise MalformedMessage(f"message is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise MalformedMessage("message is not a JSON object")
    # The limit encode_call keeps (the message object and its args/kwargs
    # add two levels): only a text with that many brackets needs the walk.
    if (text.count("[") + text.count("{") > MAX_NESTING
            and _depth(body, MAX_NESTING + 2) > MAX_NESTING + 2):
        raise MalformedMessage(f"message is nested deeper than {MAX_NESTING} levels")
    version = body.get("v", PROTOCOL_VERSION)
    if version != PROTOCOL_VERSION:
        raise MalformedMessage(f"message has unsupported protocol version {version!r}")
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
    return Message(taskid, name, queue if isinstance(queue, str) else "", args, kwargs)


def encode_result(name: str, value: Any) -> str:
    try:
        return _encoder.encode(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the result of {name}() cannot be saved as JSON: {exc}") from None


def decode_result(raw: bytes | str | None) -> Any:
    if raw is None:
        return None
    return json.loads(raw)
