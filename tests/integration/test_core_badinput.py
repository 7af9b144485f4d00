"""Bad input: unencodable arguments, bad queue names, undecodable messages in Redis."""

from __future__ import annotations

import datetime
import decimal
import json
import math
from typing import Any

import basic
import pytest
from harness import Ledger, Workers, wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rpqueue
from rpqueue.task import TaskRef

# -- arguments JSON cannot encode ----------------------------------------------------


class Opaque:
    pass


UNENCODABLE = [
    pytest.param(Opaque(), id="object"),
    pytest.param(b"raw bytes", id="bytes"),
    pytest.param({1, 2}, id="set"),
    pytest.param(datetime.date(2024, 1, 1), id="date"),
    pytest.param(decimal.Decimal("1.5"), id="decimal"),
    pytest.param(math.nan, id="nan"),
    pytest.param(math.inf, id="inf"),
    pytest.param({(1, 2): "tuple key"}, id="tuple-key"),
    pytest.param([1, {"deep": [Opaque()]}], id="nested-object"),
]


@pytest.mark.parametrize("bad", UNENCODABLE)
def test_unencodable_positional_argument(app: rpqueue.RPQueue, rcli: Any, bad: Any) -> None:
    with pytest.raises(TypeError, match="argument 1"):
        basic.record.execute("fine", bad)
    assert rcli.dbsize() == 0  # nothing queued, not even the queue's name


@pytest.mark.parametrize("bad", UNENCODABLE)
def test_unencodable_keyword_argument(app: rpqueue.RPQueue, rcli: Any, bad: Any) -> None:
    with pytest.raises(TypeError, match="'payload'"):
        basic.record.execute("fine", payload=bad)
    assert rcli.dbsize() == 0


def test_unencodable_argument_after_queue_was_used(app: rpqueue.RPQueue) -> None:
    basic.record.execute("ok")
    with pytest.raises(TypeError, match="argument 0"):
        basic.echo.execute(Opaque())
    with pytest.raises(TypeError):
        basic.record.execute("x", delay=5, when=datetime.datetime.now())
    assert rpqueue.queue_sizes()[0][:2] == ("default", 1)


def test_unencodable_argument_in_retry_and_call_task(app: rpqueue.RPQueue) -> None:
    with pytest.raises(TypeError):
        basic.fail_until_zero_fast.retry(Opaque(), _attempts=3)
    with pytest.raises(TypeError):
        rpqueue.call_task("basic.record", "default", Opaque())
    assert rpqueue.queue_sizes() == []


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=st.lists(JSON, max_size=4), kwargs=st.dictionaries(
    # execute() keeps these names (and any starting with "_") for itself.
    st.text(min_size=1, max_size=8).filter(
        lambda k: not k.startswith("_") and k not in ("delay", "taskid", "execute_inline_now")),
    JSON, max_size=3))
def test_json_arguments_are_stored_exactly(app: rpqueue.RPQueue, args: list[Any],
                                           kwargs: dict[str, Any]) -> None:
    # By name (a TaskRef): any arguments, since nothing binds them to record()'s signature.
    et = TaskRef(app, basic.record.name).execute(*args, _queue="roundtrip", **kwargs)
    try:
        [item] = [p for p in rpqueue.get_page("roundtrip", 0) if p["id"] == et.taskid]
        # Compared as JSON: a float like 1.0 must come back as it was sent.
        assert json.dumps(item["args"]) == json.dumps(args)
        assert json.dumps(item["kwargs"], sort_keys=True) == json.dumps(kwargs, sort_keys=True)
    finally:
        et.cancel()


def test_arguments_reach_the_task_unchanged(app: rpqueue.RPQueue, workers: Workers,
                                            ledger: Ledger) -> None:
    tricky = [12345678901234567, 3.141592653589793, [], {}, "\u00e9\u4e2d\U0001f600", None,
              True, -0.0, 1e300, [[[]]], {"": ""}]
    workers.start("basic", "default")
    basic.record.execute("tricky", *tricky, nested={"a": [], "b": {}})
    [run] = ledger.wait_for(1, "ran", tag="tricky")
    assert json.dumps(run["args"]) == json.dumps(tricky)
    assert run["kwargs"] == {"nested": {"a": [], "b": {}}}


# -- queue names ------------------------------------------------------------------------


BAD_QUEUES = [
    pytest.param("", id="empty-str"),
    pytest.param(b"", id="empty-bytes"),
    pytest.param(5, id="int"),
    pytest.param(3.5, id="float"),
    pytest.param(["q"], id="list"),
    pytest.param(b"\xff\xfe", id="bad-utf8"),
]


@pytest.mark.parametrize("queue", BAD_QUEUES)
def test_bad_queue_names_raise_value_error(app: rpqueue.RPQueue, rcli: Any, queue: Any) -> None:
    with pytest.raises(ValueError):
        basic.record.execute("x", _queue=queue)
    with pytest.raises(ValueError):
        rpqueue.task(queue=queue)(lambda: None)
    with pytest.raises(ValueError):
        rpqueue.set_priority(queue, 1)
    with pytest.raises(ValueError):
        rpqueue.clear_queue(queue)
    with pytest.raises(ValueError):
        rpqueue.get_page(queue, 0)
    with pytest.raises(ValueError):
        rpqueue.delete_item(queue, "some-id")
    with pytest.raises(ValueError):
        rpqueue.call_task("basic.record", queue, "x")
    assert rcli.dbsize() == 0


def test_str_and_bytes_queue_names_are_the_same_queue(app: rpqueue.RPQueue) -> None:
    a = basic.record.execute("s", _queue="same")
    b = basic.record.execute("b", _queue=b"same")
    assert a.queue == b.queue == "same"
    assert rpqueue.known_queues() == ["same"]
    assert [p["id"] for p in rpqueue.get_page(b"same", 0)] == [a.taskid, b.taskid]
    rpqueue.set_priority(b"same", 2)
    assert rpqueue.default_app().priorities() == {"same": 2.0}


def test_unusual_queue_names_work(app: rpqueue.RPQueue, workers: Workers,
                                  ledger: Ledger) -> None:
    names = ["with space", "brace}{", "{tag}", "percent%7B", "\u00e9t\u00e9", "a:b:c"]
    for name in names:
        basic.record.execute(name, _queue=name)
    workers.start("basic", *names)
    runs = ledger.wait_for(len(names), "ran")
    assert sorted((r["tag"], r["queue"]) for r in runs) == sorted((n, n) for n in names)
    assert rpqueue.known_queues() == sorted(names)


# -- undecodable messages in Redis --------------------------------------------------------


def _raw_client(rcli: Any) -> Any:
    """A client that sends and returns bytes (rcli decodes)."""
    return type(rcli)(host="127.0.0.1", port=rcli.connection_pool.connection_kwargs["port"])


def _inject(app: rpqueue.RPQueue, rcli: Any, queue: str, taskid: str, raw: bytes | str) -> None:
    """Put a message in a queue the way no rpqueue client would."""
    k = app.keys.queue(queue)
    pipe = rcli.pipeline()
    pipe.hset(k.msg, taskid, raw)
    pipe.rpush(k.ready, taskid)
    pipe.rpush(k.wake, "1")
    pipe.execute()


MALFORMED = [
    pytest.param(b"not json at all", id="not-json"),
    pytest.param(b"\x00\x01 control bytes", id="control-bytes"),
    pytest.param(b"[1, 2, 3]", id="json-array"),
    pytest.param(b'{"v": 1, "id": "x", "args": [], "kwargs": {}}', id="no-name"),
    pytest.param(b'{"v": 1, "name": "basic.record", "args": {}, "kwargs": {}}',
                 id="args-not-list"),
    pytest.param(b'{"v": 1, "name": "basic.record", "args": [], "kwargs": []}',
                 id="kwargs-not-object"),
    pytest.param(b'{"v": 99, "name": "basic.record", "args": ["x"], "kwargs": {}}',
                 id="future-version"),
]


def test_malformed_messages_are_dead_lettered_and_worker_goes_on(
        app: rpqueue.RPQueue, rcli: Any, workers: Workers, ledger: Ledger) -> None:
    basic.record.execute("before")  # makes "default" a known queue
    raw_client = _raw_client(rcli)
    ids = []
    for i, param in enumerate(MALFORMED):
        taskid = f"bad-{param.id}-{i}"
        ids.append(taskid)
        _inject(app, raw_client, "default", taskid, param.values[0])
    basic.record.execute("after")
    worker = workers.start("basic", "default")
    ledger.wait_for(2, "ran")
    wait_until(lambda: len(rpqueue.read_deadletter()) == len(ids),
               message=lambda: f"dead letters: {rpqueue.read_deadletter()}")
    dead = {d["id"]: d for d in rpqueue.read_deadletter()}
    assert set(dead) == set(ids)
    assert {d["reason"] for d in dead.values()} == {"malformed message"}
    assert all(d["queue"] == "default" for d in dead.values())
    assert all(d["error"] for d in dead.values())
    for taskid in ids:
        assert taskid in worker.stderr()
    assert worker.alive()
    assert [e["tag"] for e in ledger.events("ran")] == ["before", "after"]
    raw_client.close()


def test_unknown_task_is_dead_lettered_and_worker_goes_on(
        app: rpqueue.RPQueue, workers: Workers, ledger: Ledger) -> None:
    unknown = rpqueue.call_task("nobody.knows.me", "default", 1, 2)
    basic.record.execute("next")
    worker = workers.start("basic", "default")
    ledger.wait_for(1, "ran", tag="next")
    wait_until(lambda: rpqueue.read_deadletter(), message="dead letter")
    [dead] = rpqueue.read_deadletter()
    assert (dead["id"], dead["reason"], dead["name"]) == (unknown.taskid, "unknown task",
                                                         "nobody.knows.me")
    assert dead["args"] == [1, 2]
    worker.wait_log("nobody.knows.me")
    assert worker.alive()
    # Reading with delete=True empties the dead-letter queue.
    assert len(rpqueue.read_deadletter(delete=True)) == 1
    assert rpqueue.read_deadletter() == []


def test_wrong_arguments_are_logged_and_worker_goes_on(
        app: rpqueue.RPQueue, workers: Workers, ledger: Ledger) -> None:
    # Missing b. basic.add.execute(1) refuses it here; queued by name, as a
    # producer without the function would, it fails with TypeError in the worker.
    TaskRef(app, basic.add.name).execute(1)
    worker = workers.start("basic", "default")
    good = basic.add.execute(1, 1)
    wait_until(lambda: good.result == 2, message="next task ran")
    err = worker.stderr()
    assert "Traceback" in err and "TypeError" in err
    assert worker.alive()


NOT_UTF8 = b"\xff\xfe\x00garbage"


def test_non_utf8_message_is_dead_lettered_with_its_reason(
        app: rpqueue.RPQueue, rcli: Any, workers: Workers, ledger: Ledger) -> None:
    basic.record.execute("before")
    raw_client = _raw_client(rcli)
    _inject(app, raw_client, "default", "bad-utf8", NOT_UTF8)
    raw_client.close()
    basic.record.execute("after")
    worker = workers.start("basic", "default")
    ledger.wait_for(2, "ran")
    assert worker.alive()
    [dead] = wait_until(rpqueue.read_deadletter, message="dead letter")
    assert dead["id"] == "bad-utf8"
    assert dead["reason"] == "malformed message"
    assert "UTF-8" in (dead["error"] or "")


def test_read_deadletter_survives_a_non_utf8_dead_letter(
        app: rpqueue.RPQueue, rcli: Any, workers: Workers, ledger: Ledger) -> None:
    basic.record.execute("before")
    raw_client = _raw_client(rcli)
    _inject(app, raw_client, "default", "bad-utf8", NOT_UTF8)
    raw_client.close()
    rpqueue.call_task("nobody.knows.me", "default")
    basic.record.execute("after")
    workers.start("basic", "default")
    ledger.wait_for(2, "ran")
    dead_ids = app.keys.queue("default").dead
    wait_until(lambda: rcli.zcard(dead_ids) == 2, message="two dead letters")
    records = rpqueue.read_deadletter()
    assert {r["id"] for r in records} >= {"bad-utf8"}
    assert len(records) == 2
