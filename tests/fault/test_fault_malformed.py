"""Figure 8: malformed entries among good ones.

Entries are written with plain Redis commands, the way a producer in
another language (or a bug) could write them (docs/PROTOCOL.md, "Enqueue
with plain commands"): HSET the message, RPUSH the id, push a wake token.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import fault_tasks
import pytest
import redis
from faultlib import Ledger, WorkerPool, drained, queue_state, report, use, wait_until

from rpqueue import admin
from rpqueue.storage.message import encode_call

pytestmark = pytest.mark.fault

GOOD = 10_000
CHUNK = 100


def malformed(kind: str, taskid: str, n: int) -> bytes:
    if kind == "bad JSON":
        return b'{"v": 1, "id": "' + taskid.encode() + b'", "name": "fault_tasks.good", "args": ['
    if kind == "unknown task":
        return encode_call(taskid, "fault_tasks.no_such_task", "default", (n,), {}).encode()
    if kind == "non-UTF-8":
        return b"\xff\xfe" + encode_call(taskid, "fault_tasks.good", "default", (n,), {}).encode()
    if kind == "oversized":
        pad = "x" * (fault_tasks.MAX_MESSAGE_BYTES + 1000)
        return encode_call(taskid, "fault_tasks.good", "default", (n,), {"pad": pad}).encode()
    raise ValueError(kind)


REASONS = {"bad JSON": "malformed message", "unknown task": "unknown task",
           "non-UTF-8": "malformed message", "oversized": None}


def raw_dead_records(client: Any, app: Any) -> dict[str, dict[str, Any]]:
    """Dead-letter records as stored, read leniently (not through the API)."""
    k = app.keys.queue("default")
    out = {}
    for taskid, raw in client.hgetall(k.deadmsg).items():
        out[taskid.decode("utf-8", "replace")] = json.loads(raw.decode("utf-8", "replace"))
    return out


def push_raw(client: Any, app: Any, taskid: bytes | str, raw: bytes | str) -> None:
    """Queue one entry with plain commands, as docs/PROTOCOL.md describes."""
    k = app.keys.queue("default")
    pipe = client.pipeline(transaction=True)
    pipe.hset(k.msg, taskid, raw)
    pipe.rpush(k.ready, taskid)
    pipe.rpush(k.wake, "1")
    pipe.ltrim(k.wake, 0, 0)
    pipe.execute()
    client.zadd(app.keys.queues, {"default": time.time()})


def run_mix(url: str, pools: Callable[..., WorkerPool], ledger: Ledger,
            kinds: list[str], bad: int) -> dict[str, Any]:
    app = use(url)
    client = redis.Redis.from_url(url, socket_timeout=30)
    k = app.keys.queue("default")
    pool = pools(url, size=2, threads=4, work=0)
    good_ids: list[str] = []
    bad_ids: dict[str, str] = {}
    every = GOOD // bad
    for start in range(0, GOOD, CHUNK):
        handles = fault_tasks.good.execute_many([(n,) for n in range(start, start + CHUNK)])
        good_ids += [h.taskid for h in handles]
        pipe = client.pipeline(transaction=False)
        for n in range(start, start + CHUNK):
            if n % every == 0:
                i = n // every
                kind = kinds[i % len(kinds)]
                taskid = f"bad-{i}"
                bad_ids[taskid] = kind
                pipe.hset(k.msg, taskid, malformed(kind, taskid, n))
                pipe.rpush(k.ready, taskid)
        pipe.rpush(k.wake, "1")
        pipe.ltrim(k.wake, 0, 0)
        pipe.execute()
    assert len(bad_ids) == bad
    wait_until(lambda: drained(queue_state(client)) and ledger.count() >= 2 * GOOD,
               timeout=90, interval=0.2, message=lambda: f"drained: {queue_state(client)}")
    time.sleep(0.5)
    tally = ledger.tally()
    dead = raw_dead_records(client, app)
    result = {"app": app, "client": client, "pool": pool, "tally": tally, "dead": dead,
              "good_ids": good_ids, "bad_ids": bad_ids}
    return result


def check(run: dict[str, Any], figure: str) -> None:
    tally, dead, bad_ids, good_ids = run["tally"], run["dead"], run["bad_ids"], run["good_ids"]
    done = sum(1 for i in good_ids if tally.ends[i] == 1)
    with_reason = Counter(bad_ids[i] for i, r in dead.items() if i in bad_ids and r.get("reason"))
    report(figure, good_done=done, malformed=len(bad_ids), dead_lettered=len(dead),
           with_reason=dict(with_reason), crashes=len(run["pool"].unexpected_exits()))
    assert done == GOOD
    assert run["pool"].unexpected_exits() == []
    assert set(dead) == set(bad_ids), (
        f"dead-lettered {len(dead)} of {len(bad_ids)}; not: "
        f"{Counter(bad_ids[i] for i in set(bad_ids) - set(dead))}")
    for taskid, record in dead.items():
        expected = REASONS[bad_ids[taskid]]
        assert record.get("reason") == (expected or record.get("reason")), (taskid, record)
        assert record.get("reason") and record.get("error"), (taskid, record)
        assert record.get("attempts_used") == 1
    # Nothing malformed ran, and every good task ran once.
    assert not set(bad_ids) & tally.executed()
    assert all(tally.starts[i] == 1 for i in good_ids)


def test_malformed_entries_all_kinds(redis_url: str, pools: Callable[..., WorkerPool],
                                     ledger: Ledger) -> None:
    run = run_mix(redis_url, pools, ledger,
                  ["bad JSON", "unknown task", "non-UTF-8", "oversized"], 1_000)
    check(run, "8 malformed entries (all four kinds)")
    # The reasons name the fault.
    errors = Counter(r["error"].split(":")[0] for r in run["dead"].values())
    assert errors["message is not valid JSON"] >= 1
    assert errors["message is not valid UTF-8"] >= 1


def test_dead_letter_of_non_utf8_message_is_readable(
        redis_url: str, pools: Callable[..., WorkerPool], ledger: Ledger) -> None:
    app = use(redis_url)
    client = redis.Redis.from_url(redis_url, socket_timeout=30)
    push_raw(client, app, "bad-utf8", malformed("non-UTF-8", "bad-utf8", 1))
    pools(redis_url, size=1, threads=1, work=0)
    wait_until(lambda: queue_state(client)["dead"] == 1, timeout=30)
    (record,) = admin.dead_records(app.ctx)
    assert record["reason"] == "malformed message"
    assert "UTF-8" in (record["error"] or "")
    assert record["attempts_used"] == 1 and record["time"]


def test_entry_with_non_utf8_id_is_dead_lettered(
        redis_url: str, pools: Callable[..., WorkerPool], ledger: Ledger) -> None:
    app = use(redis_url)
    client = redis.Redis.from_url(redis_url, socket_timeout=30)
    bad_id = b"id-\xff"
    push_raw(client, app, bad_id, encode_call("id-x", "fault_tasks.good", "default", (1,), {}))
    pools(redis_url, size=1, threads=1, work=0)
    # It is either dead-lettered or run and finished; either way it leaves the queue.
    wait_until(lambda: drained(queue_state(client)), timeout=5,
               message=lambda: f"drained: {queue_state(client)}")
