"""Issue #11: the payload size limit and the JSON nesting depth limit.

Size: the client refuses a call whose message is over ``app.max_message_bytes``
(default 1 MiB) with MessageTooLarge, before anything is written; the
enqueue scripts refuse it again (they take the limit as an argument), so a
client that skipped the check stores 0 bytes too. A hostile producer can
pass 0 ("no limit") to the script: the worker's own check (runner._prepare)
dead-letters such a message without decoding it.

Depth: encode refuses arguments nested deeper than MAX_NESTING; a worker
decoding a hostile, deeply nested message does not crash (Python's json
raises RecursionError, which decode turns into MalformedMessage) and
dead-letters it, as it does a message over MAX_NESTING that json can parse.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import sec_tasks
from sec_helpers import Worker, dead_records, push_raw, wait_until, worker_argv

import rpqueue
from rpqueue.data import Data
from rpqueue.errors import MessageTooLarge
from rpqueue.storage.message import MAX_MESSAGE_BYTES, MAX_NESTING, MalformedMessage, decode, encode_call
from rpqueue.storage.scripts import scripts
from rpqueue.storage.wire import unstamp
from rpqueue.task import Task, TaskRef

PREFIX = "lim:"
MIB = 1024 * 1024


@pytest.fixture
def app(redis_url: str, default_app: rpqueue.RPQueue) -> rpqueue.RPQueue:
    default_app.set_redis_url(redis_url)
    default_app.set_key_prefix(PREFIX)
    return default_app


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    yield client
    client.close()


def stored_bytes(client: redis.Redis) -> int:
    """Everything on the server, in bytes of values: 0 means nothing at all."""
    total = 0
    for key in client.keys("*"):
        total += int(client.memory_usage(key) or 0)
    return total


def message_of_size(size: int, name: str = "sec_tasks.echo", taskid: str = "t" * 22) -> str:
    """A well-formed message of exactly ``size`` bytes (UTF-8)."""
    empty = encode_call(taskid, name, "default", ("",), {})
    pad = size - len(empty.encode("utf-8"))
    assert pad >= 0
    message = encode_call(taskid, name, "default", ("x" * pad,), {})
    assert len(message.encode("utf-8")) == size
    return message


def nest(levels: int) -> Any:
    """``levels`` lists inside each other: nest(1) == [], nest(2) == [[]]."""
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


# -- size: the client --------------------------------------------------------------


def test_default_limit_is_one_mib(app: rpqueue.RPQueue) -> None:
    assert MAX_MESSAGE_BYTES == MIB
    assert app.max_message_bytes == MIB


def test_client_refuses_an_oversized_call_and_stores_nothing(app: rpqueue.RPQueue,
                                                             raw: redis.Redis) -> None:
    big = "x" * MIB
    with pytest.raises(MessageTooLarge, match=r"sec_tasks\.echo\(\) encodes to \d+ bytes, over "
                                              r"the limit of 1048576 bytes"):
        sec_tasks.echo.execute(big)
    with pytest.raises(MessageTooLarge):
        sec_tasks.echo.execute_many([("small",), (big,)])
    with pytest.raises(MessageTooLarge):
        asyncio.run(sec_tasks.echo.aexecute(big))
    with pytest.raises(MessageTooLarge):
        sec_tasks.echo.execute(value=big)
    # Multi-byte characters count as bytes: 350k "€" is 1.05 MB of UTF-8.
    with pytest.raises(MessageTooLarge):
        sec_tasks.echo.execute("€" * 350_000)
    with pytest.raises(MessageTooLarge, match="nothing was queued"):
        Data("lim-data", app=app).put_data(["ok", big])
    assert raw.dbsize() == 0 and stored_bytes(raw) == 0


def test_the_limit_is_exact_and_configurable(app: rpqueue.RPQueue, raw: redis.Redis) -> None:
    app.max_message_bytes = 2000
    taskref = TaskRef(app, "sec_tasks.echo")
    ok = message_of_size(2000)
    value = json.loads(ok)["args"][0]
    handle = taskref.execute(value, taskid="t" * 22)
    assert len(unstamp(raw.hget(f"{PREFIX}q:{{default}}:msg", handle.taskid)) or b"") == 2000
    with pytest.raises(MessageTooLarge, match="limit of 2000 bytes"):
        taskref.execute(value + "x", taskid="u" * 22)
    assert raw.hlen(f"{PREFIX}q:{{default}}:msg") == 1
    # Raised: a 2 MiB call goes through.
    app.max_message_bytes = 3 * MIB
    taskref.execute("x" * (2 * MIB))
    assert raw.hlen(f"{PREFIX}q:{{default}}:msg") == 2


# -- size: the scripts -------------------------------------------------------------


def test_scripts_refuse_what_a_client_without_the_check_sends(
        app: rpqueue.RPQueue, raw: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    """The client check switched off, the limit still passed to the scripts:
    they refuse, with the same clear error, and nothing is stored."""
    monkeypatch.setattr(Task, "_check_size", lambda self, message: None)
    big = "x" * MIB
    with pytest.raises(MessageTooLarge, match=r"exceeds the limit of 1048576 bytes"):
        sec_tasks.echo.execute(big)
    with pytest.raises(MessageTooLarge, match=r"exceeds the limit of 1048576 bytes"):
        sec_tasks.echo.execute_many([("small",), ("small too",), (big,)])
    with pytest.raises(MessageTooLarge):
        asyncio.run(sec_tasks.echo.aexecute(big))
    # note_queue registered the queue name (a few bytes); no task was stored.
    assert raw.hlen(f"{PREFIX}q:{{default}}:msg") == 0
    assert raw.llen(f"{PREFIX}q:{{default}}:ready") == 0
    assert raw.hget(f"{PREFIX}q:{{default}}:stats", "enqueued") is None


def test_enqueue_script_checks_the_limit_it_is_given(app: rpqueue.RPQueue,
                                                     raw: redis.Redis) -> None:
    k = app.keys.queue("default")
    keys = scripts().enqueue.keys_for(k)
    exact = message_of_size(1000)
    over = message_of_size(1001, taskid="u" * 22)
    enqueue = scripts().enqueue
    assert enqueue(raw, keys, ["t" * 22, exact, 0, "", 1000, 0, 0])[0] == 1
    with pytest.raises(redis.ResponseError, match="message of 1001 bytes exceeds the limit "
                                                  "of 1000 bytes"):
        enqueue(raw, keys, ["u" * 22, over, 0, "", 1000, 0, 0])
    assert raw.hkeys(k.msg) == [b"t" * 22]
    # enqueue_many checks every message before writing any.
    with pytest.raises(redis.ResponseError, match="exceeds the limit"):
        scripts().enqueue_many(raw, keys, [0, 1000, 0, 0, "", "0 0", "v" * 22, exact,
                                           "u" * 22, over])
    assert raw.hkeys(k.msg) == [b"t" * 22]
    # The argument is the producer's to give: 0 means "no limit". A hostile
    # producer can always pass it (or write with plain commands); the worker's
    # check below is what holds.
    assert enqueue(raw, keys, ["u" * 22, over, 0, "", 0, 0, 0])[0] == 1


def test_data_put_script_refuses_oversized_items(app: rpqueue.RPQueue, raw: redis.Redis,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rpqueue.data.live.validate", lambda items, limit: None)
    try:
        with pytest.raises(MessageTooLarge):
            Data("lim-data", app=app).put_data(["x" * MIB])
    finally:
        stored = raw.hlen(f"{PREFIX}d:{{lim-data}}:msg")
    assert stored == 0


# -- size: the worker ----------------------------------------------------------------


def test_worker_dead_letters_oversized_messages_however_they_were_written(
        app: rpqueue.RPQueue, raw: redis.Redis, redis_url: str,
        start_worker: Callable[..., Worker]) -> None:
    k = app.keys.queue("default")
    keys = scripts().enqueue.keys_for(k)
    big = message_of_size(MIB + 1, taskid="s" * 22)
    # Through the script with the limit argument set to 0, and with plain commands.
    scripts().enqueue(raw, keys, ["s" * 22, big, 0, "", 0, 0, 0])
    push_raw(raw, PREFIX, "default", "p" * 22,
             message_of_size(2 * MIB, taskid="p" * 22).encode())
    good = sec_tasks.add.execute(1, 2)
    worker = start_worker(worker_argv(redis_url, PREFIX, "sec_tasks", "default"))
    wait_until(lambda: good.status == "done", message=lambda: worker.log())
    wait_until(lambda: len(dead_records(raw, PREFIX, "default")) == 2,
               message=lambda: worker.log())
    records = dead_records(raw, PREFIX, "default")
    assert records["s" * 22]["reason"] == "oversized message"
    assert records["s" * 22]["error"] == (f"message of {MIB + 1} bytes exceeds the limit of "
                                          f"{MIB} bytes")
    assert records["p" * 22]["reason"] == "oversized message"
    assert worker.alive()


def test_take_checks_the_size_in_redis_and_keeps_only_a_head(app: rpqueue.RPQueue,
                                                             raw: redis.Redis) -> None:
    """take-11 measures the stored message (HSTRLEN) against the limit it is
    given: an oversized one is never returned, and its dead letter keeps the
    first KiB and the size, not the whole value (issue #25 item 6)."""
    k = app.keys.queue("default")
    taskid = "o" * 22
    big = message_of_size(3 * MIB, taskid=taskid)
    push_raw(raw, PREFIX, "default", taskid, big.encode())
    reply = scripts().take(raw, scripts().take.keys_for(k), [30000, 100, "0 0", MIB])
    assert not reply[0] and not reply[1]  # nothing handed out
    record = dead_records(raw, PREFIX, "default")[taskid]
    assert record["reason"] == "oversized message" and record["truncated"] is True
    assert record["message_size"] == 3 * MIB
    assert "message" not in record and len(record["message_head"].encode()) <= 1024
    assert big.startswith(record["message_head"])
    assert record["error"] == f"message of {3 * MIB} bytes exceeds the limit of {MIB} bytes"
    assert raw.hlen(k.msg) == 0 and raw.zcard(k.leases) == 0
    assert int(raw.hget(k.stats, "dead") or 0) == 1


# -- nesting depth ----------------------------------------------------------------------


def test_encode_refuses_arguments_nested_deeper_than_the_limit() -> None:
    assert MAX_NESTING == 100
    encode_call("i", "n", "q", (nest(MAX_NESTING),), {})
    encode_call("i", "n", "q", (), {"k": nest(MAX_NESTING)})
    with pytest.raises(TypeError, match=r"argument 0 of n\(\) is nested deeper than 100 levels"):
        encode_call("i", "n", "q", (nest(MAX_NESTING + 1),), {})
    with pytest.raises(TypeError, match=r"keyword argument 'k' of n\(\) is nested deeper"):
        encode_call("i", "n", "q", (1,), {"k": {"a": nest(MAX_NESTING)}})
    # Far deeper than Python's recursion limit: still a TypeError, no crash.
    with pytest.raises(TypeError, match="argument 1 of n"):
        encode_call("i", "n", "q", (1, nest(50_000)), {})


def test_producer_refuses_deep_arguments_and_stores_nothing(app: rpqueue.RPQueue,
                                                            raw: redis.Redis) -> None:
    with pytest.raises(TypeError, match="nested deeper than 100 levels"):
        sec_tasks.echo.execute(nest(MAX_NESTING + 1))
    assert raw.dbsize() == 0


def hostile_nested(depth: int, taskid: str) -> str:
    return ('{"v":1,"id":"' + taskid + '","name":"sec_tasks.echo","queue":"default","args":['
            + "[" * depth + "]" * depth + "]}")


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 900, 100_000, 400_000])
def test_decode_turns_any_depth_into_malformed_message(depth: int) -> None:
    with pytest.raises(MalformedMessage, match=r"nested deeper than 100|not valid JSON"):
        decode(hostile_nested(depth, "d"))
    assert decode(hostile_nested(MAX_NESTING - 1, "d")).name == "sec_tasks.echo"


def test_decode_in_a_small_thread_stack_does_not_crash() -> None:
    """Workers decode in threads; json's recursion guard must fire before the
    C stack of a thread runs out."""
    old = threading.stack_size()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            decode(hostile_nested(400_000, "d"))
        except BaseException as exc:
            errors.append(exc)

    threading.stack_size(1024 * 1024)
    try:
        t = threading.Thread(target=run)
        t.start()
        t.join(30)
    finally:
        threading.stack_size(old)
    assert len(errors) == 1 and isinstance(errors[0], MalformedMessage)


def test_worker_dead_letters_deeply_nested_messages(app: rpqueue.RPQueue, raw: redis.Redis,
                                                    redis_url: str,
                                                    start_worker: Callable[..., Worker]) -> None:
    ids = {"a" * 22: MAX_NESTING + 3, "b" * 22: 5_000, "c" * 22: 500_000}
    for taskid, depth in ids.items():
        push_raw(raw, PREFIX, "default", taskid, hostile_nested(depth, taskid))
    fine = "d" * 22
    push_raw(raw, PREFIX, "default", fine, hostile_nested(MAX_NESTING - 1, fine))
    good = sec_tasks.add.execute(2, 2)
    worker = start_worker(worker_argv(redis_url, PREFIX, "sec_tasks", "default"))
    wait_until(lambda: good.status == "done", message=lambda: worker.log())
    wait_until(lambda: len(dead_records(raw, PREFIX, "default")) == 3,
               message=lambda: worker.log())
    records = dead_records(raw, PREFIX, "default")
    assert set(records) == set(ids)
    for record in records.values():
        assert record["reason"] == "malformed message"
        assert "nested deeper than 100" in record["error"] or "recursion" in record["error"]
    # Within the limit it is an ordinary call.
    assert rpqueue.EnqueuedTask(app, "sec_tasks.echo", "default", fine, []).status == "done"
    assert worker.alive()
    assert "Traceback" not in worker.log()


def test_a_hostile_data_item_does_not_destroy_the_items_read_with_it(
        app: rpqueue.RPQueue, raw: redis.Redis) -> None:
    q = Data("lim-hostile", app=app)
    ids = list(q.put_data(["good", "to be replaced"]))
    # Another writer with access to the queue (the protocol is public)
    # replaces one item with a hostile one.
    raw.hset(f"{PREFIX}d:{{lim-hostile}}:msg", ids[1], "[" * 100_000 + "]" * 100_000)
    got: dict[str, Any] = {}
    try:
        got = q.get_data(2)
    except ValueError:
        pass  # refusing the read is fine; losing the good item is not
    left = q.get_data(2, vis_timeout=-1)
    assert "good" in list(got.values()) + list(left.values())
