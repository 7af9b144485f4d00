"""The task-queue call builders (storage/calls.py), without Redis: argument
layouts as the scripts' ARGV comments describe them, and reply parsing."""

from __future__ import annotations

from typing import Any

from rpqueue.storage.calls import (
    MAINTENANCE_BATCH,
    Calls,
    Enqueued,
    Taken,
    call_taskids,
)
from rpqueue.storage.keys import Keys
from rpqueue.storage.scripts import scripts
from rpqueue.storage.wire import CancelOutcome, EnqueueStatus, FailMode, FailOutcome

QUEUE = "q"
LIMIT = 4096


def _calls() -> Calls:
    keys = Keys("t:")
    return Calls(lambda: keys, lambda: LIMIT)


def test_enqueue_arguments() -> None:
    call = _calls().enqueue(QUEUE, "id1", "{}", 1.5, "30000 3 3 0", unique_for=2, fresh=True)
    assert call.script is scripts().enqueue
    # id, message, delay ms, meta, max message bytes, unique ms, fresh, opts.
    assert call.args == ["id1", "{}", 1500, "30000 3 3 0", LIMIT, 2000, 1, "0 0"]
    assert _calls().enqueue(QUEUE, "id1", "{}", 0, "").args[-3:-1] == [0, 0]
    assert call.what == "task id1 for queue 'q'"
    assert call_taskids(call) == ["id1"]


def test_enqueue_reply() -> None:
    call = _calls().enqueue(QUEUE, "id1", "{}", 0, "")
    assert call.parse([1, 1700000000000]) == Enqueued(EnqueueStatus.QUEUED)
    assert call.parse([3, 1, b"holder"]) == Enqueued(EnqueueStatus.DUPLICATE, "holder")
    assert call.parse([4, 1, 100]) == Enqueued(EnqueueStatus.FULL, 100)


def test_enqueue_many_shared_meta() -> None:
    items = [("a", "{1}", "m"), ("b", "{2}", "m")]
    (call,) = _calls().enqueue_many(QUEUE, items, 0.25, unique_for=1, fresh=True)
    assert call.script is scripts().enqueue_many
    # delay ms, max bytes, unique ms, fresh, shared meta; then id, message pairs.
    assert call.args == [250, LIMIT, 1000, 1, "m", "0 0", "a", "{1}", "b", "{2}"]
    assert call_taskids(call) == ["a", "b"]
    assert call.what == "batch of 2 tasks for queue 'q'"


def test_enqueue_many_per_item_meta() -> None:
    items = [("a", "{1}", ""), ("b", "{2}", "0 1 1 1"), ("c", "{3}", "")]
    (call,) = _calls().enqueue_many(QUEUE, items, 0)
    # '*' in place of the shared meta: id, message, meta triples.
    assert call.args == [0, LIMIT, 0, 0, "*", "0 0", "a", "{1}", "", "b", "{2}", "0 1 1 1", "c",
                         "{3}", ""]
    assert call_taskids(call) == ["a", "b", "c"]


def test_enqueue_many_chunks() -> None:
    items = [(f"i{n}", "{}", "m" if n < 3 else "") for n in range(5)]
    calls = _calls().enqueue_many(QUEUE, items, 0, chunk=3)
    assert [call_taskids(c) for c in calls] == [["i0", "i1", "i2"], ["i3", "i4"]]
    # Each chunk decides its own meta form.
    assert calls[0].args[4] == "m" and calls[1].args[4] == ""
    assert calls[0].keys is calls[1].keys
    assert _calls().enqueue_many(QUEUE, [], 0) == []


def test_enqueue_many_reply() -> None:
    (call,) = _calls().enqueue_many(QUEUE, [("a", "{}", "")], 0)
    assert call.parse([1, 0, b"holder", 4]) == [
        Enqueued(EnqueueStatus.QUEUED), Enqueued(EnqueueStatus.RUNNING),
        Enqueued(EnqueueStatus.DUPLICATE, "holder"), Enqueued(EnqueueStatus.FULL)]


def test_take() -> None:
    call = _calls().take(QUEUE, 2.5)
    assert call.args == [2500, MAINTENANCE_BATCH, "0 0", LIMIT]
    reply = call.parse([b"id1", b"raw", b"7", 1000, -1])
    assert reply.taken == Taken(QUEUE, "id1", b"raw", "7", b"id1")
    assert (reply.now_ms, reply.next_ms) == (1000, -1)
    empty = call.parse([None, None, "", "1000", "1500"])
    assert empty.taken is None and empty.next_ms == 1500


def test_taken_key_is_the_raw_id() -> None:
    assert Taken(QUEUE, "\ufffd", b"", "1", b"\xff").key == b"\xff"
    assert Taken(QUEUE, "x", b"", "1").key == "x"


def test_finish_take() -> None:
    taken = Taken(QUEUE, "id1", b"raw", "tok", b"id1")
    call = _calls().finish_take(QUEUE, taken, "null", 60, 30)
    assert call.args == [30000, MAINTENANCE_BATCH, b"id1", "tok", "null", 60000, "0 0", LIMIT]
    done, reply = call.parse([None, None, "", 5, -1, 1])
    assert done is True and reply.taken is None


def test_done_fail_release_extend() -> None:
    c = _calls()
    done = c.done(QUEUE, b"id1", "tok", "1", 0)
    assert done.args == [b"id1", "tok", "1", 0, "0 0"] and done.parse(1) is True
    assert done.keys[4] == "t:q:{q}:result:id1"
    fail = c.fail(QUEUE, "id1", "tok", "err", FailMode.FINAL, "aborted", 0.5)
    assert fail.args == ["id1", "tok", "err", 2, "aborted", 500, "0 0", "", "", 1, ""]
    assert fail.parse(3) is FailOutcome.DEAD
    release = c.release(Taken(QUEUE, "id1", b"", "tok"))
    assert release.args == ["id1", "tok"] and release.parse(0) is False
    extend = c.extend(QUEUE, "id1", "tok", 10)
    assert extend.args == ["id1", "tok", 10000] and extend.parse(b"123") == 123


def test_inspecting() -> None:
    c = _calls()
    cancel = c.cancel(QUEUE, "id1")
    assert cancel.args == ["id1", "0 0"] and cancel.parse(-1) is CancelOutcome.RESULT_DELETED
    status = c.status(QUEUE, "id1")
    assert status.args == ["id1"] and status.parse(b"waiting") == "waiting"
    assert c.clear(QUEUE, 10).args == [10]
    peek = c.peek(QUEUE)
    assert peek.args == [] and peek.parse([b"5", b"-1"]) == (5, -1)


def test_message_limit_is_read_per_call() -> None:
    limit = [10]
    keys = Keys("t:")
    calls = Calls(lambda: keys, lambda: limit[0])
    first: Any = calls.enqueue(QUEUE, "a", "{}", 0, "").args[4]
    limit[0] = 20
    assert (first, calls.enqueue(QUEUE, "a", "{}", 0, "").args[4]) == (10, 20)
