"""The pure wire formats, without Redis: wire.py (meta strings, ready-time
stamps, units) and message.py (task messages, results)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rpqueue.storage import message as m
from rpqueue.storage.wire import STAMP_LEN, ms, stamped_at, task_meta, text, unstamp

# -- wire.py -------------------------------------------------------------------


def test_text() -> None:
    assert text(b"abc") == "abc"
    assert text("abc") == "abc"
    assert text(12) == "12"
    # Bytes that are not UTF-8 never raise: they come back replaced.
    assert text(b"\xff") == "\ufffd"


@pytest.mark.parametrize(("seconds", "want"), [
    (0, 0), (1, 1000), (0.0004, 0), (0.0006, 1), (1.5, 1500), (-3, 0), (2.0004, 2000),
])
def test_ms(seconds: float, want: int) -> None:
    assert ms(seconds) == want
    assert isinstance(ms(seconds), int)


def test_task_meta_plain_task_is_empty() -> None:
    # The scripts read '' as a 0/1 task at priority 0, without a parse.
    assert task_meta(0, 1, False) == ""
    assert task_meta(0, 5, False) == ""
    assert task_meta(-1, 1, False, 0, "") == ""


@pytest.mark.parametrize(("args", "want"), [
    ((30, 3, False), "30000 3 3 0"),
    ((0, 1, True), "0 1 1 1"),
    ((1.5, 2, True, 7), "1500 2 2 1 7"),
    ((0, 1, False, -2), "0 1 1 0 -2"),
    ((0, 1, False, 0, "user:1"), "0 1 1 0 0 user:1"),
    # The unique key is last, so it may hold spaces.
    ((10, 4, True, 3, "a b  c"), "10000 4 4 1 3 a b  c"),
])
def test_task_meta_fields(args: tuple[Any, ...], want: str) -> None:
    assert task_meta(*args) == want


@pytest.mark.parametrize("raw", ["1700000000123:{}", b"1700000000123:{}"])
def test_stamp_round_trip(raw: Any) -> None:
    assert STAMP_LEN == 14
    assert stamped_at(raw) == 1700000000123
    assert unstamp(raw) == raw[STAMP_LEN:]


@pytest.mark.parametrize("raw", [
    "{}", b"{}", "", b"", "170000000012:{}", "17000000001x3:{}", "1700000000123{}",
    b"1700000000123;{}", "1700000000123",
])
def test_unstamped_messages_pass_through(raw: Any) -> None:
    # Messages written without a stamp (older data, other writers) stay whole.
    assert unstamp(raw) == raw
    assert stamped_at(raw) is None


def test_none_passes_through() -> None:
    assert unstamp(None) is None
    assert stamped_at(None) is None


def test_stamp_keeps_a_colon_in_the_message() -> None:
    raw = '0000000000001:{"a":"1700000000123:x"}'
    assert stamped_at(raw) == 1
    assert unstamp(raw) == '{"a":"1700000000123:x"}'


# -- message.py ----------------------------------------------------------------

CALLS: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
    ((), {}),
    ((1, 2.5, "x", None, True), {}),
    ((), {"a": [1, {"b": None}], "ü": "ünïcode ✓"}),
    (([],), {"empty": {}}),
    (("line\nbreak \"quoted\" \\ back",), {"n": -0.0}),
    ((10**30,), {"big": 2**63}),
]


@pytest.mark.parametrize(("args", "kwargs"), CALLS)
def test_message_round_trip(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    raw = m.encode_call("id1", "mod.fn", "que{ue}", args, kwargs)
    # The text is exactly what json gives for the whole object.
    body = json.loads(raw)
    assert body["v"] == m.PROTOCOL_VERSION
    for stored in (raw, raw.encode("utf-8")):
        msg = m.decode(stored)
        assert (msg.id, msg.name, msg.queue) == ("id1", "mod.fn", "que{ue}")
        assert msg.args == list(args)
        assert msg.kwargs == kwargs


def test_message_leaves_out_empty_kwargs() -> None:
    raw = m.encode_call("i", "f", "q", (1,), {})
    assert "kwargs" not in json.loads(raw)
    assert m.decode(raw).kwargs == {}


def test_message_keeps_non_ascii_as_is() -> None:
    raw = m.encode_call("i", "f", "q", ("é",), {})
    assert "é" in raw


def test_message_refuses_what_json_cannot_carry() -> None:
    with pytest.raises(TypeError, match="argument 0"):
        m.encode_call("i", "f", "q", ({1, 2},), {})
    with pytest.raises(TypeError, match="'k'"):
        m.encode_call("i", "f", "q", (), {"k": object()})
    with pytest.raises(TypeError, match="argument 0"):
        m.encode_call("i", "f", "q", (float("nan"),), {})


def _nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def test_message_nesting_limit() -> None:
    ok = m.encode_call("i", "f", "q", (_nested(m.MAX_NESTING - 1),), {})
    assert m.decode(ok).args[0] == _nested(m.MAX_NESTING - 1)
    with pytest.raises(TypeError, match="nested"):
        m.encode_call("i", "f", "q", (_nested(m.MAX_NESTING + 5),), {})


@pytest.mark.parametrize(("raw", "reason"), [
    (b"\xff\xfe", "UTF-8"),
    ("not json", "JSON"),
    ("[1]", "object"),
    ('{"v": 2, "name": "f"}', "version"),
    ('{"args": []}', "task name"),
    ('{"name": ""}', "task name"),
    ('{"name": "f", "args": {}}', "'args'"),
    ('{"name": "f", "kwargs": []}', "'kwargs'"),
    ('{"name": "f", "id": 5}', "'id'"),
])
def test_decode_refuses_unusable_messages(raw: Any, reason: str) -> None:
    with pytest.raises(m.MalformedMessage, match=reason):
        m.decode(raw)


def test_decode_fills_in_defaults() -> None:
    msg = m.decode('{"name": "f"}', expect_id="given")
    assert (msg.id, msg.queue, msg.args, msg.kwargs) == ("given", "", [], {})
    assert m.decode('{"name": "f", "id": "x", "queue": 3}').queue == ""


def test_decode_refuses_deep_nesting() -> None:
    raw = '{"name": "f", "args": ' + "[" * 200 + "]" * 200 + "}"
    with pytest.raises(m.MalformedMessage, match="nested"):
        m.decode(raw)


@pytest.mark.parametrize("value", [None, 1, "x", [1, {"a": None}], {"ü": 1.5}])
def test_result_round_trip(value: Any) -> None:
    assert m.decode_result(m.encode_result("f", value)) == value
    assert m.decode_result(m.encode_result("f", value).encode()) == value


def test_result_refuses_non_json() -> None:
    with pytest.raises(TypeError, match=r"result of f\(\)"):
        m.encode_result("f", object())
    assert m.decode_result(None) is None


def test_ids() -> None:
    ids = {m.new_id() for _ in range(1000)} | set(m.new_ids(600))
    assert len(ids) == 1600
    for i in ids:
        assert len(i) == 22 and not i.startswith("-")
