"""Items as JSON: checking a put before anything is sent, encoding it in
chunks, and decoding what a read returns."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..errors import MessageTooLarge
from ..storage.message import new_id
from ..storage.wire import text

# Items validated per JSON call before a put: keeps the validation pass's
# memory bounded however many items one put carries.
_VALIDATE_SLICE = 4096

log = logging.getLogger("rpqueue.data")
_UNREADABLE = object()

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _fast_encoder() -> Callable[[Any], str]:
    """_encoder.encode for items already validated, minus its per-call setup.

    JSONEncoder.encode builds a C encoder on every call, a third of the cost
    of a small item; a put encodes every item, so build it once. Without
    CPython's C helper (or if its signature ever changes), the plain encoder.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is not None:
        try:
            # The arguments JSONEncoder.iterencode passes for _encoder's
            # settings; markers None skips the cycle check (validation did it).
            c_encode = make(None, _encoder.default, json.encoder.encode_basestring, None,
                            ":", ",", False, False, False)
            if "".join(c_encode([1.5, "é", {"a": None}], 0)) == _encoder.encode(
                    [1.5, "é", {"a": None}]):
                return lambda item: "".join(c_encode(item, 0))
        except TypeError:
            pass
    return _encoder.encode


_encode_item = _fast_encoder()


def as_items(data: Any, is_one: bool) -> Sequence[Any]:
    """The items of a put: ``data`` itself when ``is_one``, else its elements."""
    if is_one:
        return [data]
    if isinstance(data, (str, bytes, bytearray, Mapping)) or not isinstance(data, Iterable):
        raise TypeError(f"data must be a list of items, not {type(data).__name__} "
                        "(put one item with is_one=True)")
    return data if isinstance(data, Sequence) else list(data)


def validate(items: Sequence[Any], limit: int) -> None:
    """Refuse the whole put before the first write if any item cannot be sent."""
    for start in range(0, len(items), _VALIDATE_SLICE):
        part = items[start:start + _VALIDATE_SLICE]
        try:
            joined = _encoder.encode(list(part))
        except (TypeError, ValueError, RecursionError):
            joined = None
        # An item's JSON is part of the slice's: a short slice (<= 4 bytes
        # per character) holds no item over the limit.
        if joined is not None and not (limit and len(joined) * 4 > limit):
            continue
        for i, item in enumerate(part, start):
            try:
                size = len(_encoder.encode(item).encode("utf-8"))
            except (TypeError, ValueError, RecursionError) as exc:
                raise TypeError(f"item {i} cannot be sent as JSON: {exc}") from None
            if limit and size > limit:
                raise MessageTooLarge(f"item {i} was not queued: {size} bytes exceeds "
                                      f"the limit of {limit} bytes (nothing was queued)")


def put_chunks(items: Sequence[Any], head: list[Any],
               chunksize: int) -> Iterator[tuple[int, list[str], Sequence[Any], list[Any]]]:
    """data_put arguments for a checked put, one (start, ids, items, args) per
    chunk, each chunk encoded only when its turn comes."""
    for start in range(0, len(items), chunksize):
        chunk = items[start:start + chunksize]
        ids = [new_id() for _ in chunk]
        args: list[Any] = [*head, *([None, None] * len(chunk))]
        args[len(head)::2] = ids
        args[len(head) + 1::2] = map(_encode_item, chunk)
        yield start, ids, chunk, args


def _decode_items(raws: list[Any]) -> list[Any]:
    """JSON items read from Redis, parsed as one array: one parser call per read.

    An item that is not JSON this process can parse (written by another
    program, or nested past the parser's recursion limit) comes back as
    _UNREADABLE, so the good items read with it are not lost.
    """
    if not raws:
        return []
    try:
        if isinstance(raws[0], bytes):
            items = json.loads(b"[" + b",".join(raws) + b"]")
        else:
            items = json.loads("[" + ",".join(raws) + "]")
    except (TypeError, ValueError, RecursionError):
        items = None
    if isinstance(items, list) and len(items) == len(raws):
        return items
    out = []
    for raw in raws:
        try:
            out.append(json.loads(raw))
        except (TypeError, ValueError, RecursionError):
            out.append(_UNREADABLE)
    return out


def read_rows(flat: list[Any]) -> list[tuple[str, Any, Any]]:
    """(id, item, receipt) rows of a data_get reply's {id, item, receipt, ...},
    leaving out (and logging) items that are not readable JSON."""
    rows = list(zip([text(i) for i in flat[0::3]], _decode_items(flat[1::3]), flat[2::3]))
    for itemid, item, _ in rows:
        if item is _UNREADABLE:
            log.error("data item %r is not readable JSON; left out of this read", itemid)
    return [row for row in rows if row[1] is not _UNREADABLE]
