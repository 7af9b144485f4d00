"""Data queues (rpqueue.data.Data) against a real redis-server."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis.asyncio.connection as redis_aconnection
import redis.connection as redis_connection

import rpqueue
from rpqueue.data import Data, Leased
from rpqueue.errors import MessageTooLarge, RedisOutOfMemory
from rpqueue.storage.wire import FailMode

DLQ = rpqueue.DEADLETTER_QUEUE


def wait_until(cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``cond`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def dapp(redis_url: str, request: pytest.FixtureRequest) -> rpqueue.RPQueue:
    app = rpqueue.new_rpqueue("test-data-" + request.node.name)
    app.set_redis_url(redis_url)
    return app


@pytest.fixture
def default_app(redis_url: str) -> Iterator[rpqueue.RPQueue]:
    rpqueue.set_redis_url(redis_url)
    rpqueue.set_key_prefix("rpqueue:")
    yield rpqueue.default_app()
    rpqueue.set_key_prefix("rpqueue:")


def redis_now(app: rpqueue.RPQueue) -> float:
    return app.redis_time()


def evalsha_calls(app: rpqueue.RPQueue) -> int:
    stats = app.client.info("commandstats")
    return sum(int(stats.get(name, {}).get("calls", 0))
               for name in ("cmdstat_evalsha", "cmdstat_eval"))


# -- the README examples -------------------------------------------------------


def test_readme_example_queues(default_app: rpqueue.RPQueue) -> None:
    item1, item2, item3 = {"a": 1}, [1, 2, 12345678901234567], "three"

    # 0/1 queue
    dq = rpqueue.Data("best_effort")
    dq.put_data([item1, item2, item3])
    items = dq.get_data(2)  # {<uuid>: <item>, ...}
    assert list(items.values()) == [item1, item2]
    assert dq.currently_available() == (1, 0)

    # Up to 5 deliveries, with 5 second delay before re-insertion
    dq5 = rpqueue.Data("retry_processing", attempts=5, vis_timeout=5)
    dq5.put_data([item1, item2, item3])
    items = dq5.get_data(2)  # {<uuid>: <item>, ...}
    items2 = dq5.get_data(2, vis_timeout=20)  # override timeout on read
    assert len(items) == 2 and len(items2) == 1
    refreshed = set(dq5.refresh_data(items, vis_timeout=7))  # refresh our lock
    assert refreshed == set(items)
    # The README writes `for k,v in items`, which cannot unpack a dict's
    # keys on any Python; `.items()` is what it means.
    items = {k: v for k, v in items.items() if k in refreshed}
    assert dq5.done_data(items) == 2
    assert dq5.done_data(items2) == 1
    assert dq5.currently_available() == (0, 0)

    # Up to 1 try with a 5 second delay before insertion into deadletter queue
    dqd = rpqueue.Data("retry_processing", attempts=1, vis_timeout=5, use_dead=True)
    dqd.put_data([item1, item2, item3])
    items = dqd.get_data(2)  # {<uuid>: <item>, ...}
    # 0.3 s instead of the README's 20 s, and the sleep becomes a wait below.
    items2 = dqd.get_data(2, vis_timeout=0.3)  # override timeout on read
    refreshed = set(dqd.refresh_data(items, vis_timeout=7))  # refresh our lock
    items = {k: v for k, v in items.items() if k in refreshed}
    dqd.done_data(items)
    # items2 are now "dead"
    dead = rpqueue.Data(rpqueue.DEADLETTER_QUEUE)
    peek = wait_until(lambda: dead.get_data(2, vis_timeout=-1), what="dead letters")
    dead_items = dead.get_data(2)  # these have a different format, see docs!
    assert set(dead_items) == set(peek) == set(items2)
    for taskid, row in dead_items.items():
        assert row[0] == taskid and row[1] == "" and row[2] == items2[taskid]
        assert row[3]["queue"] == "retry_processing" and isinstance(row[4], float)
    assert dead.get_data(2) == {}


def test_readme_example_aggregate(default_app: rpqueue.RPQueue) -> None:
    aggregate_queue = rpqueue.Data("aggregate_stats", vis_timeout=30, use_dead=False)
    seen: list[Any] = []

    @rpqueue.periodic_task(60, name="test_data.aggregate")
    def aggregate() -> None:
        # If vis_timeout is not provided, will use the queue default.
        # If vis_timeout is <= 0, will act as a 0/1 queue, and later "done data"
        # calling is unnecessary.
        data = aggregate_queue.get_data(items=100, vis_timeout=5)
        # data is a dictionary: {<uuid>: <item>, <uuid>: <item>, ...}
        done_with = []
        for id, value in data.items():
            seen.append(value)
            done_with.append(id)

        aggregate_queue.refresh_data(data)  # still working!

        # You can pass any iterator that naturally iterates over the uuids you
        # want to be "done" with.
        aggregate_queue.done_data(done_with)
        # also okay:
        aggregate_queue.done_data(data)
        aggregate_queue.done_data(tuple(data))
        aggregate_queue.done_data(list(data))

    aggregate_queue.put_data([{"stat": i} for i in range(150)])
    aggregate.function()
    assert seen == [{"stat": i} for i in range(100)]
    assert aggregate_queue.currently_available() == (50, 0)
    aggregate.function()
    assert aggregate_queue.currently_available() == (0, 0)
    default_app.registry.pop("test_data.aggregate", None)


# -- put_data ------------------------------------------------------------------


def test_put_returns_ids_and_items_round_trip_in_order(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", app=dapp)
    values = [1, 1.5, 12345678901234567, 3.141592653589793, "é✓", [], {}, None, True,
              {"nested": [[], {"x": [1, {"y": None}]}]}]
    put = d.put_data(values)
    assert list(put.values()) == values
    assert all(isinstance(i, str) and len(i) == 22 for i in put)
    assert len(set(put)) == len(values)
    got = d.get_data(1000)
    assert got == put and list(got) == list(put)


def test_put_is_one(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", app=dapp)
    put = d.put_data([1, 2, 3], is_one=True)
    assert list(put.values()) == [[1, 2, 3]]
    put = d.put_data({"a": 1}, is_one=True)
    assert list(put.values()) == [{"a": 1}]
    assert list(d.get_data(5).values()) == [[1, 2, 3], {"a": 1}]


@pytest.mark.parametrize("data", ["abc", b"abc", {"a": 1}, 5])
def test_put_refuses_non_lists_without_is_one(dapp: rpqueue.RPQueue, data: Any) -> None:
    with pytest.raises(TypeError, match="is_one"):
        Data("q", app=dapp).put_data(data)


def test_put_accepts_generators_and_tuples(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", app=dapp)
    d.put_data(i for i in range(3))
    d.put_data((3, 4))
    assert list(d.get_data(10).values()) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("bad", [object(), float("nan"), {1, 2}, b"bytes"])
def test_put_refuses_non_json_naming_the_item_and_stores_nothing(
        dapp: rpqueue.RPQueue, bad: Any) -> None:
    d = Data("q", app=dapp)
    with pytest.raises(TypeError, match=r"item 700\b"):
        d.put_data([*range(700), bad, 1], chunksize=3)
    assert d.currently_available() == (0, 0)
    assert dapp.client.keys("*") == []


def test_put_refuses_oversized_item_and_stores_nothing(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", app=dapp)
    dapp.max_message_bytes = 1000
    try:
        with pytest.raises(MessageTooLarge, match=r"item 2\b"):
            d.put_data(["a", "b", "x" * 2000], chunksize=1)
        # Multi-byte text counts in bytes, not characters.
        with pytest.raises(MessageTooLarge, match=r"item 0\b"):
            d.put_data(["é" * 600])
        assert d.currently_available() == (0, 0)
        d.put_data(["y" * 900])
        assert d.currently_available() == (1, 0)
    finally:
        dapp.max_message_bytes = rpqueue.storage.message.MAX_MESSAGE_BYTES


@pytest.mark.parametrize("chunksize", [1, 7, 512, 5000])
def test_chunksize_keeps_every_item_in_order(dapp: rpqueue.RPQueue, chunksize: int) -> None:
    d = Data("q", app=dapp)
    put = d.put_data(list(range(2500)), chunksize=chunksize)
    assert len(put) == 2500
    out: list[Any] = []
    while len(out) < 2500:
        out += d.get_data(1000).values()
    assert out == list(range(2500))


@pytest.mark.parametrize("chunksize", [0, -1, 1.5, True])
def test_chunksize_must_be_positive_int(dapp: rpqueue.RPQueue, chunksize: Any) -> None:
    with pytest.raises(ValueError):
        Data("q", app=dapp).put_data([1], chunksize=chunksize)


def test_delay_needs_vis_timeout(dapp: rpqueue.RPQueue) -> None:
    with pytest.raises(ValueError, match="vis_timeout"):
        Data("q", app=dapp).put_data([1], delay=1)
    with pytest.raises(ValueError, match="vis_timeout"):
        Data("q", app=dapp).put_data([1], delay=1)
    Data("q", app=dapp).put_data([1], delay=0)


def test_delay_hides_items_until_due(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", vis_timeout=5, app=dapp)
    start = redis_now(dapp)
    put = d.put_data(["late"], delay=0.4)
    d.put_data(["now"])
    assert d.currently_available() == (1, 1)
    assert list(d.get_data(5, vis_timeout=0).values()) == ["now"]
    got = wait_until(lambda: d.get_data(5, vis_timeout=0), what="the delayed item")
    assert got == put
    assert redis_now(dapp) - start >= 0.4


# -- get_data ------------------------------------------------------------------


@pytest.mark.parametrize("items", [0, -1, 1001])
def test_items_must_be_1_to_1000(dapp: rpqueue.RPQueue, items: int) -> None:
    with pytest.raises(ValueError, match=r"1\.\.1000"):
        Data("q", app=dapp).get_data(items)


@pytest.mark.parametrize("items", [1.5, "3", None])
def test_items_must_be_int(dapp: rpqueue.RPQueue, items: Any) -> None:
    with pytest.raises(TypeError):
        Data("q", app=dapp).get_data(items)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_timeouts_must_be_finite(dapp: rpqueue.RPQueue, value: float) -> None:
    d = Data("q", vis_timeout=5, app=dapp)
    for call in (lambda: d.get_data(1, vis_timeout=value), lambda: d.get_data(1, get_timeout=value),
                 lambda: d.refresh_data(["x"], vis_timeout=value),
                 lambda: d.put_data([1], delay=value), lambda: Data("q", vis_timeout=value)):
        with pytest.raises(ValueError, match="finite"):
            call()


def test_get_1000_items(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", app=dapp)
    d.put_data(list(range(1200)))
    assert list(d.get_data(1000).values()) == list(range(1000))
    assert list(d.get_data(1000).values()) == list(range(1000, 1200))
    assert d.get_data(1000) == {}


def test_zero_one_reads_remove(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", attempts=3, vis_timeout=5, app=dapp)
    d.put_data([1, 2, 3])
    assert list(d.get_data(2, vis_timeout=0).values()) == [1, 2]
    assert d.currently_available() == (1, 0)
    assert list(Data("q", app=dapp).get_data(2).values()) == [3]
    assert d.currently_available() == (0, 0)
    assert dapp.client.keys("*dataqueues") and len(dapp.client.keys("*")) == 1


def test_peek_changes_nothing(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", attempts=1, vis_timeout=5, app=dapp)
    put = d.put_data([1, 2, 3])
    for _ in range(3):
        assert d.get_data(2, vis_timeout=-1) == dict(list(put.items())[:2])
    leased = d.get_data(1)
    assert list(leased.values()) == [1]
    # A leased item is not visible to peeks; peeks never count as reads.
    assert list(d.get_data(5, vis_timeout=-1).values()) == [2, 3]
    assert d.refresh_data(leased, vis_timeout=5) == list(leased)
    assert d.currently_available() == (2, 1)


def test_lease_hides_then_redelivers_up_to_attempts(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", attempts=3, vis_timeout=0.2, app=dapp)
    put = d.put_data(["x"])
    for read in range(3):
        got = wait_until(lambda: d.get_data(1), what=f"read {read + 1}")
        assert got == put
        assert d.get_data(1) == {}
        assert d.currently_available() == (0, 1)
    # After the third lease expires the item is out of reads: dropped.
    wait_until(lambda: d.currently_available() == (0, 0), what="the drop")
    assert d.get_data(1) == {}
    assert Data(DLQ, app=dapp).get_data(5, vis_timeout=-1) == {}


def test_vis_timeout_on_read_overrides_the_queue_default(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", attempts=2, vis_timeout=30, app=dapp)
    put = d.put_data(["x"])
    assert d.get_data(1, vis_timeout=0.2) == put
    assert wait_until(lambda: d.get_data(1), what="the redelivery") == put


def test_use_dead_dead_letters_in_documented_format(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", attempts=2, vis_timeout=0.2, use_dead=True, app=dapp)
    value = {"big": 12345678901234567, "pi": 3.141592653589793, "empty": [], "obj": {}}
    before = redis_now(dapp)
    put = d.put_data([value])
    (taskid,) = put
    d.get_data(1)
    wait_until(lambda: d.get_data(1), what="the second read")
    dead = Data(DLQ, app=dapp)
    rows = wait_until(lambda: dead.get_data(5, vis_timeout=-1), what="the dead letter")
    row = rows[taskid]
    assert row[:3] == [taskid, "", value]
    assert row[3]["queue"] == "q" and row[3]["attempts_used"] == 2
    assert "expired" in row[3]["reason"] and row[3]["time"] >= row[4]
    assert before - 0.01 <= row[4] <= redis_now(dapp)
    assert d.currently_available() == (0, 0)
    assert dead.currently_available() == (1, 0)
    assert dead.get_data(5) == rows  # 0/1: this read removes them
    assert dead.get_data(5) == {}


def test_use_dead_on_put_overrides_the_queue(dapp: rpqueue.RPQueue) -> None:
    keep = Data("q", vis_timeout=0.2, use_dead=False, app=dapp)
    drop = Data("q", vis_timeout=0.2, use_dead=True, app=dapp)
    buried = keep.put_data(["buried"], use_dead=True)
    drop.put_data(["dropped"], use_dead=False)
    assert len(keep.get_data(2)) == 2
    wait_until(lambda: keep.currently_available() == (0, 0), what="both leases to end")
    assert set(Data(DLQ, app=dapp).get_data(5)) == set(buried)


def test_reader_settles_what_the_put_left_open(dapp: rpqueue.RPQueue) -> None:
    Data("q", app=dapp).put_data(["x"])  # attempts 1, use_dead None: open
    reader = Data("q", attempts=2, vis_timeout=0.2, use_dead=True, app=dapp)
    put_id = next(iter(reader.get_data(1)))
    assert wait_until(lambda: reader.get_data(1), what="the second read") == {put_id: "x"}
    # A later reader with other settings does not change the item's.
    other = Data("q", attempts=5, vis_timeout=0.2, use_dead=False, app=dapp)
    wait_until(lambda: other.currently_available() == (0, 0), what="the second lease to end")
    assert set(Data(DLQ, app=dapp).get_data(5)) == {put_id}


def test_concurrent_zero_one_readers_get_each_item_once(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", app=dapp)
    d.put_data(list(range(3000)))
    got: list[list[int]] = [[] for _ in range(4)]

    def read(slot: int) -> None:
        while True:
            items = d.get_data(37)
            if not items:
                return
            got[slot] += items.values()

    threads = [threading.Thread(target=read, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    everything = [x for part in got for x in part]
    assert sorted(everything) == list(range(3000))


# -- get_timeout -----------------------------------------------------------------


def blocked_readers(app: rpqueue.RPQueue) -> int:
    return sum(1 for c in app.client.client_list() if c.get("cmd") == "blpop")


def test_get_timeout_blocks_without_polling_and_returns_on_put(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", app=dapp)
    result: dict[str, Any] = {}

    def reader() -> None:
        result["items"] = d.get_data(5, get_timeout=20)
        result["at"] = time.monotonic()

    thread = threading.Thread(target=reader)
    thread.start()
    wait_until(lambda: blocked_readers(dapp) == 1, what="the reader to block")
    calls = evalsha_calls(dapp)
    time.sleep(0.5)  # let time pass: a polling reader would run scripts now
    assert evalsha_calls(dapp) - calls <= 1  # INFO itself is not a script
    put_at = time.monotonic()
    put = d.put_data(["hello", "world"])
    thread.join(10)
    assert result["items"] == put
    assert result["at"] - put_at < 1.0


def test_get_timeout_gives_up_after_the_timeout(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", app=dapp)
    start = time.monotonic()
    assert d.get_data(1, get_timeout=0.3) == {}
    assert 0.3 <= time.monotonic() - start < 3
    start = time.monotonic()
    assert d.get_data(1, get_timeout=0) == {}
    assert d.get_data(1, get_timeout=None) == {}
    assert time.monotonic() - start < 1


def test_get_timeout_wakes_for_a_delayed_item(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", vis_timeout=5, app=dapp)
    put = d.put_data(["soon"], delay=0.5)
    calls = evalsha_calls(dapp)
    start = time.monotonic()
    assert d.get_data(1, vis_timeout=0, get_timeout=10) == put
    assert 0.4 <= time.monotonic() - start < 3
    # Slept until the due time instead of polling.
    assert evalsha_calls(dapp) - calls <= 4


def test_get_timeout_wakes_when_a_shorter_delay_arrives(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", vis_timeout=5, app=dapp)
    d.put_data(["late"], delay=30)
    result: dict[str, Any] = {}

    def reader() -> None:
        result["items"] = d.get_data(1, vis_timeout=0, get_timeout=20)

    thread = threading.Thread(target=reader)
    thread.start()
    wait_until(lambda: blocked_readers(dapp) == 1, what="the reader to block")
    put = d.put_data(["early"], delay=0.3)
    thread.join(10)
    assert result["items"] == put


def test_get_timeout_wakes_when_a_lease_expires(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", attempts=2, vis_timeout=0.4, app=dapp)
    put = d.put_data(["x"])
    assert d.get_data(1) == put
    start = time.monotonic()
    assert d.get_data(1, get_timeout=10) == put
    assert time.monotonic() - start < 3


def test_get_timeout_wakes_every_blocked_reader(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", app=dapp)
    got: list[dict[str, Any]] = []
    lock = threading.Lock()

    def reader() -> None:
        items = d.get_data(1, get_timeout=20)
        with lock:
            got.append(items)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: blocked_readers(dapp) == 4, what="four blocked readers")
    put = d.put_data(["a", "b", "c", "d"])
    for t in threads:
        t.join(10)
    assert sorted(i for g in got for i in g) == sorted(put)
    assert all(len(g) == 1 for g in got)


def test_a_blocked_peek_does_not_keep_the_wake_from_readers(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", app=dapp)
    got: dict[str, Any] = {}

    def read(name: str, vis: float, timeout: float) -> None:
        got[name] = d.get_data(5, vis_timeout=vis, get_timeout=timeout)
        got[name + "-at"] = time.monotonic()

    # The peek waits less: when the take wins, nothing is left to peek at.
    threads = [threading.Thread(target=read, args=("peek", -1, 3)),
               threading.Thread(target=read, args=("take", 0, 20))]
    for t in threads:
        t.start()
    wait_until(lambda: blocked_readers(dapp) == 2, what="two blocked readers")
    put_at = time.monotonic()
    put = d.put_data(["x"])
    for t in threads:
        t.join(10)
    assert got["take"] == put and got["peek"] in ({}, put)
    assert got["take-at"] - put_at < 1.0


# -- refresh_data / done_data -------------------------------------------------------


def test_refresh_extends_live_leases_and_returns_str_ids(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", attempts=2, vis_timeout=0.3, app=dapp)
    put = d.put_data([1, 2, 3])
    items = d.get_data(2)
    read_at = redis_now(dapp)
    refreshed = d.refresh_data(items, vis_timeout=5)
    assert refreshed == list(items) and all(type(i) is str for i in refreshed)
    wait_until(lambda: redis_now(dapp) > read_at + 0.6, what="the first deadline to pass")
    assert d.currently_available() == (1, 2)
    assert list(d.get_data(5, vis_timeout=0).values()) == [3]
    waiting = [i for i in put if i not in items]
    # Only live leases are extended: not waiting, finished or unknown ids.
    assert d.refresh_data(["nope", *waiting, *items]) == list(items)


def test_refresh_accepts_any_iterable_of_ids(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", vis_timeout=30, app=dapp)
    d.put_data(list(range(6)))
    items = d.get_data(6)
    ids = list(items)
    assert d.refresh_data(items) == ids
    assert d.refresh_data(tuple(ids)) == ids
    assert d.refresh_data(i for i in ids) == ids
    assert d.refresh_data([i.encode() for i in ids]) == ids
    assert d.refresh_data(ids[0]) == ids[:1]
    assert d.refresh_data(items.keys()) == ids
    assert d.refresh_data([]) == []


def test_refresh_to_zero_gives_the_item_back(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", attempts=2, vis_timeout=30, app=dapp)
    put = d.put_data(["x"])
    assert d.get_data(1) == put
    assert d.refresh_data(put, vis_timeout=0) == list(put)
    assert d.currently_available() == (1, 0)
    assert d.get_data(1) == put
    # That give-back counted as a read: the second lease was the last one.
    d.refresh_data(put, vis_timeout=0)
    assert d.currently_available() == (0, 0)


def test_refresh_uses_the_queue_vis_timeout_by_default(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", vis_timeout=30, app=dapp)
    put = d.put_data(["x"])
    d.get_data(1, vis_timeout=0.2)
    assert d.refresh_data(put) == list(put)
    deadline = dapp.client.zscore(dapp.keys.data("q").base + "leases", next(iter(put)))
    assert deadline / 1000 - redis_now(dapp) > 25


def test_done_accepts_any_iterable_of_ids(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", vis_timeout=30, app=dapp)
    d.put_data(list(range(12)))
    items = d.get_data(12)
    ids = list(items)
    assert d.done_data({i: items[i] for i in ids[:2]}) == 2
    assert d.done_data(ids[2:4]) == 2
    assert d.done_data(tuple(ids[4:6])) == 2
    assert d.done_data(set(ids[6:8])) == 2
    assert d.done_data(i for i in ids[8:10]) == 2
    assert d.done_data([ids[10].encode()]) == 1
    assert d.done_data(ids[11]) == 1
    assert d.done_data(ids) == 0
    assert d.done_data([]) == 0
    assert d.currently_available() == (0, 0)


def test_done_without_receipts_finishes_items_anywhere(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", vis_timeout=5, app=dapp)
    waiting = d.put_data(["waiting", "next"])
    delayed = d.put_data(["delayed"], delay=30)
    first = next(iter(waiting))
    assert d.done_data([first, *delayed]) == 2
    assert list(d.get_data(5, vis_timeout=-1).values()) == ["next"]
    assert list(d.get_data(5).values()) == ["next"]
    assert d.currently_available() == (0, 1)


def test_done_data_many_ids(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", vis_timeout=30, app=dapp)
    put = d.put_data(list(range(2500)))
    while d.get_data(1000):
        pass
    assert d.done_data(put) == 2500
    assert d.currently_available() == (0, 0)


# -- receipts ------------------------------------------------------------------------


def test_receipts_fence_a_reader_whose_lease_expired(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", attempts=3, vis_timeout=0.2, app=dapp)
    put = d.put_data(["x", "y"])
    first = d.get_data_with_receipts(2)
    assert {i: v.item for i, v in first.items()} == put
    assert all(isinstance(v, Leased) and isinstance(v.receipt, str) for v in first.values())
    # Expired but not yet handed on (no read ran since): refused all the same.
    leases = dapp.keys.data("q").base + "leases"
    deadline = max(score for _, score in dapp.client.zrange(leases, 0, -1, withscores=True))
    wait_until(lambda: redis_now(dapp) * 1000 > deadline, what="the first lease to end")
    assert d.refresh_data(first) == [] and d.done_data(first) == 0
    assert dapp.client.zcard(leases) == 2
    second = wait_until(lambda: d.get_data_with_receipts(2, vis_timeout=30), what="re-read")
    assert set(second) == set(put)
    assert d.refresh_data(first, vis_timeout=30) == []
    assert d.done_data(first) == 0
    assert d.currently_available() == (0, 2)
    assert sorted(d.refresh_data(second, vis_timeout=30)) == sorted(put)
    # The README's filter keeps receipts: done then acts for this lease only.
    keep = {k: v for k, v in second.items() if v.item == "x"}
    assert d.done_data(keep) == 1
    assert d.done_data(second) == 1
    assert d.currently_available() == (0, 0)


def test_ids_alone_are_not_fenced(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", attempts=2, vis_timeout=0.2, app=dapp)
    put = d.put_data(["x"])
    stale = d.get_data_with_receipts(1)
    wait_until(lambda: d.get_data(1, vis_timeout=30), what="re-read")
    assert d.refresh_data(stale) == []
    # The seed's behaviour stays: plain ids act whoever holds the lease.
    assert d.refresh_data(list(stale)) == list(put)
    assert d.done_data(list(stale)) == 1


def test_receipts_need_a_lease(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", vis_timeout=0, app=dapp)
    d.put_data([1])
    with pytest.raises(ValueError, match="vis_timeout"):
        d.get_data_with_receipts(1)
    with pytest.raises(ValueError, match="vis_timeout"):
        d.get_data_with_receipts(1, vis_timeout=-1)
    assert next(iter(d.get_data_with_receipts(1, vis_timeout=5).values())).item == 1


def test_receipts_and_plain_ids_mix_in_one_call(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", vis_timeout=30, app=dapp)
    d.put_data([1, 2, 3])
    leased = d.get_data_with_receipts(3)
    ids = list(leased)
    mixed: dict[str, Any] = {ids[0]: leased[ids[0]], ids[1]: 2, ids[2]: Leased(3, "999")}
    assert sorted(d.refresh_data(mixed)) == sorted(ids[:2])
    assert d.done_data(mixed) == 2
    assert d.currently_available() == (0, 1)


# -- whole queue, dead letters, admin ------------------------------------------------


def test_currently_available_counts_available_and_invisible(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", attempts=2, vis_timeout=30, app=dapp)
    assert d.currently_available() == (0, 0)
    d.put_data(list(range(5)))
    d.put_data([9], delay=30)
    d.get_data(2)
    assert d.currently_available() == (3, 3)
    d.get_data(1, vis_timeout=0)
    assert d.currently_available() == (2, 3)


def test_delete_all_and_clear_queue(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", vis_timeout=30, use_dead=True, app=dapp)
    d.put_data(list(range(5)))
    d.put_data([9], delay=30)
    d.get_data(2)
    assert d.delete_all() == 6
    assert d.currently_available() == (0, 0)
    assert d.get_data(5) == {}
    d.put_data([1, 2])
    assert dapp.clear_queue("q", is_data=True) == 2
    assert d.delete_all() == 0


def make_dead(app: rpqueue.RPQueue, queue: str, values: list[Any]) -> dict[str, Any]:
    d = Data(queue, vis_timeout=0.01, use_dead=True, app=app)
    put = d.put_data(values)
    while d.get_data(1000):
        pass
    dead = Data(queue, is_dead=True, app=app)
    wait_until(lambda: dead.currently_available() == (len(values), 0), what="dead letters")
    return put


def test_dead_letter_views(dapp: rpqueue.RPQueue) -> None:
    a = make_dead(dapp, "a", ["a1", "a2"])
    b = make_dead(dapp, "b", ["b1"])
    everything = Data(DLQ, app=dapp)
    only_a = Data("a", is_dead=True, app=dapp)
    assert everything.currently_available() == (3, 0)
    assert set(everything.get_data(10, vis_timeout=-1)) == set(a) | set(b)
    assert {i: r[2] for i, r in only_a.get_data(10, vis_timeout=-1).items()} == a
    assert len(everything.get_data(2, vis_timeout=-1)) == 2

    records = dapp.read_deadletter(is_data=True)
    assert {r["id"]: r["item"] for r in records} == {**a, **b}
    assert {r["queue"] for r in records} == {"a", "b"}
    assert [r["time"] for r in records] == sorted(r["time"] for r in records)
    assert Data.read_dead(dapp, limit=1) == records[:1]

    b1 = next(iter(b))
    assert everything.done_data([b1, "unknown"]) == 1
    assert everything.refresh_data(a) == []
    left = [r for r in records if r["id"] != b1]
    assert Data.read_dead(dapp, delete=True, limit=1) == left[:1]
    assert Data.read_dead(dapp) == left[1:]
    assert everything.delete_all() == 1
    assert everything.currently_available() == (0, 0)
    with pytest.raises(ValueError):
        everything.put_data([1])


def test_read_dead_beyond_one_script_slice(dapp: rpqueue.RPQueue) -> None:
    put = make_dead(dapp, "q", list(range(1500)))
    records = Data.read_dead(dapp, limit=2000)
    assert {r["id"]: r["item"] for r in records} == put
    assert len(Data.read_dead(dapp, delete=True, limit=1200)) == 1200
    assert Data(DLQ, app=dapp).currently_available() == (300, 0)


def test_dead_letter_readers_share_nothing(dapp: rpqueue.RPQueue) -> None:
    put = make_dead(dapp, "q", list(range(50)))
    got: list[str] = []
    lock = threading.Lock()

    def reader() -> None:
        while True:
            rows = Data(DLQ, app=dapp).get_data(3)
            if not rows:
                return
            with lock:
                got.extend(rows)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(got) == sorted(put)


def test_dead_tasks_view(dapp: rpqueue.RPQueue) -> None:
    @dapp.task(queue="tq", use_dead=True, name="test_data.doomed")  # type: ignore[attr-defined, untyped-decorator]
    def doomed(*args: Any, **kwargs: Any) -> None:
        pass

    call = doomed.execute(1, [2, 12345678901234567], k={"v": []})
    taken = dapp.store.run(dapp.store.calls.take("tq", 30)).taken
    assert taken is not None and taken.id == call.taskid
    dapp.store.run(dapp.store.calls.fail("tq", taken.id, taken.token, "boom", FailMode.DEAD, "test"))
    tasks = Data(DLQ, is_tasks=True, app=dapp)
    peek = tasks.get_data(items=5, vis_timeout=-1)
    row = peek[call.taskid]
    assert row[:4] == [call.taskid, "test_data.doomed", [1, [2, 12345678901234567]],
                       {"k": {"v": []}}]
    assert isinstance(row[4], float)
    assert tasks.currently_available() == (1, 0)
    assert Data("tq", is_tasks=True, is_dead=True, app=dapp).get_data(5, -1) == peek
    assert tasks.get_data(items=5) == peek
    assert tasks.get_data(items=5) == {}
    with pytest.raises(ValueError, match="is_tasks"):
        Data("tq", is_tasks=True, app=dapp).get_data(1)


def test_queue_names_as_bytes(dapp: rpqueue.RPQueue) -> None:
    Data(b"q", app=dapp).put_data([1])
    assert list(Data("q", app=dapp).get_data(1).values()) == [1]
    with pytest.raises(ValueError):
        Data(b"", app=dapp)


@pytest.mark.parametrize("attempts, error", [(0, ValueError), ("3", TypeError),
                                             (True, TypeError)])
def test_attempts_must_be_a_positive_int(dapp: rpqueue.RPQueue, attempts: Any,
                                         error: type[Exception]) -> None:
    with pytest.raises(error):
        Data("q", attempts=attempts, app=dapp)


def test_keys_share_one_hash_tag_under_the_prefix(redis_url: str) -> None:
    app = rpqueue.new_rpqueue("test-data-keys", "tdk:")
    app.set_redis_url(redis_url)
    d = Data("we{ird}", attempts=2, vis_timeout=0.05, use_dead=True, app=app)
    d.put_data(list(range(5)))
    d.put_data([5], delay=30)
    d.get_data(3)
    wait_until(lambda: Data(DLQ, app=app).currently_available()[0] == 0 and d.get_data(3),
               what="the redelivery")
    keys = sorted(k.decode() for k in app.client.keys("*"))
    assert all(k.startswith("tdk:") for k in keys)
    queue_keys = [k for k in keys if k != app.keys.data_queues]
    assert {re.search(r"\{([^}]*)\}", k).group(1) for k in queue_keys} == {"we%7Bird%7D"}  # type: ignore[union-attr]
    assert app.client.smembers(app.keys.data_queues) == {b"we{ird}"}


def test_scripts_reload_after_script_flush(dapp: rpqueue.RPQueue) -> None:
    d = Data("q", vis_timeout=0.01, use_dead=True, app=dapp)
    d.put_data([1])
    dapp.client.script_flush()
    d.put_data([2])
    dapp.client.script_flush()
    assert len(d.get_data(5)) == 2
    dapp.client.script_flush()
    wait_until(lambda: Data(DLQ, app=dapp).get_data(5, vis_timeout=-1), what="dead letters")


def test_put_into_a_full_redis_says_so(redis_factory: Any) -> None:
    server = redis_factory({"maxmemory": "2mb", "maxmemory-policy": "noeviction"})
    app = rpqueue.new_rpqueue("test-data-oom")
    app.set_redis_url(server.url)
    d = Data("q", app=app)
    with pytest.raises(RedisOutOfMemory, match="were queued"):
        d.put_data(["x" * 1000] * 5000, chunksize=100)


# -- round trips ---------------------------------------------------------------------


def _count_sends(monkeypatch: pytest.MonkeyPatch, sends: list[Any]) -> None:
    """Count what the app writes to Redis: a round trip is one send (a
    pipeline packs all its commands into one), so no MONITOR is needed."""
    sync_conn, async_conn = redis_connection.AbstractConnection, redis_aconnection.AbstractConnection
    sync_send, async_send = sync_conn.send_packed_command, async_conn.send_packed_command

    def send(self: Any, command: Any, check_health: bool = True) -> None:
        sends.append(command)
        sync_send(self, command, check_health)

    async def asend(self: Any, command: Any, check_health: bool = True) -> None:
        sends.append(command)
        await async_send(self, command, check_health)

    monkeypatch.setattr(sync_conn, "send_packed_command", send)
    monkeypatch.setattr(async_conn, "send_packed_command", asend)


@pytest.mark.parametrize("use_async", [False, True], ids=["put_data", "aput_data"])
def test_a_one_chunk_put_is_one_round_trip(dapp: rpqueue.RPQueue, use_async: bool,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    d = Data("q", app=dapp)
    sends: list[Any] = []

    def measured() -> None:
        # Counting starts after a first put, which connects and loads the
        # script; the index is dropped so the next put must write it again.
        dapp.client.delete(dapp.keys.data_queues)
        _count_sends(monkeypatch, sends)

    async def both() -> None:
        # One event loop, one asyncio client for both puts.
        await d.aput_data([0])
        measured()
        await d.aput_data([1, 2])

    if use_async:
        asyncio.run(both())
    else:
        d.put_data([0])
        measured()
        d.put_data([1, 2])
    monkeypatch.undo()
    # The index update and the script went in one send, and both were done.
    assert len(sends) == 1
    assert dapp.client.smembers(dapp.keys.data_queues) == {b"q"}
    assert sorted(d.get_data(5).values()) == [0, 1, 2]
