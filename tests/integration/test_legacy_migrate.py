"""``rpqueue migrate-legacy`` against tasks queued by the real rpqueue 0.33.7.

The original runs in its own virtualenv (see legacymods/legacy_procs.py);
each test has it queue work with its own code, migrates, and checks what
our keys, the 0.33 keys and our worker then hold and do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

# legacymods/ is importable: tests/conftest.py puts it on sys.path.
from legacy_procs import (
    Worker,
    legacy_python,
    run_legacy,
    start_legacy,
    wait_until,
)
from migrated_tasks import RAN

import rpqueue
from rpqueue import cli
from rpqueue.legacy import MigrationReport, migrate_legacy
from rpqueue.storage.wire import unstamp

PARTS = ("messages:", "nqueue:", "pqueue:", "queue:", "invisible:")


@pytest.fixture
def legacy(redis_url: str) -> int:
    """The port of this test's Redis, once the real rpqueue 0.33.7 is at hand."""
    if legacy_python() is None:
        pytest.skip("rpqueue 0.33.7 unavailable: set RPQUEUE_LEGACY_PYTHON to a python that "
                    "has it (pip install rpqueue==0.33.7; Python <= 3.11)")
    return int(redis_url.rsplit(":", 1)[1].split("/")[0])


@pytest.fixture
def raw(redis_url: str) -> Iterator[Any]:
    """A client that returns bytes, as 0.33 stored them."""
    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    yield client
    client.close()


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Worker]]:
    workers: list[Worker] = []
    yield workers
    for w in workers:
        w.stop()


def snapshot(raw: Any, pattern: str = "*") -> dict[bytes, Any]:
    """Every key's type and content (DUMP differs when a hash only rehashed)."""
    read = {b"hash": lambda c, k: c.hgetall(k), b"list": lambda c, k: c.lrange(k, 0, -1),
            b"zset": lambda c, k: c.zrange(k, 0, -1, withscores=True),
            b"set": lambda c, k: c.smembers(k), b"string": lambda c, k: c.get(k)}
    out: dict[bytes, Any] = {}
    for key in sorted(raw.keys(pattern)):
        kind = raw.type(key)
        out[key] = (kind, read[kind](raw, key), raw.pttl(key) > 0)
    return out


def migrate_cli(capsys: pytest.CaptureFixture[str], url: str, prefix: str,
                *extra: str) -> str:
    code = cli.main(["migrate-legacy", "--url", url, "--legacy-prefix", prefix, *extra])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    return out.out


def row(output: str, queue: str) -> list[str]:
    """The cells of one queue's row in the migration table."""
    for line in output.splitlines():
        # Plain ASCII "|" when not a terminal (as here), "│" on one.
        cells = [c.strip() for c in line.replace("│", "|").split("|")[1:-1]]
        if cells and cells[0] == queue:
            return cells[1:]
    raise AssertionError(f"no row for {queue!r} in:\n{output}")


STEPS: list[dict[str, Any]] = [
    {"op": "execute", "task": "add", "args": [1, 2]},
    {"op": "execute", "task": "add", "args": [3], "kwargs": {"b": 4}},
    {"op": "execute", "task": "greet", "args": ["héllo"], "kwargs": {"name": {"k": [1, 2.5]}}},
    {"op": "execute", "task": "retrying", "args": [7]},
    {"op": "execute", "task": "add", "args": [5], "delay": 30},
    {"op": "execute", "task": "add", "args": [9], "delay": 1.5},
]


@pytest.mark.parametrize("prefix", ["", "old:"])
def test_dry_run_counts_and_writes_nothing(legacy: int, redis_url: str, raw: Any,
                                           app: rpqueue.RPQueue, prefix: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    run_legacy(legacy, prefix, STEPS)
    before = snapshot(raw)
    assert before and all(k.startswith(prefix.encode()) for k in before)
    out = migrate_cli(capsys, redis_url, prefix, "--dry-run")
    assert "would move 6 task(s) from 2 queue(s)" in out
    assert "dry run, nothing written" in out
    # waiting, delayed, retried, moved, left in place
    assert row(out, "alpha") == ["3", "2", "0", "5", "0"]
    assert row(out, "beta") == ["1", "0", "0", "1", "0"]
    assert snapshot(raw) == before


def test_dry_run_with_the_wrong_prefix_finds_nothing(legacy: int, redis_url: str, raw: Any,
                                                     app: rpqueue.RPQueue,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    run_legacy(legacy, "old:", STEPS[:2])
    before = snapshot(raw)
    out = migrate_cli(capsys, redis_url, "", "--dry-run")
    assert "would move 0 task(s) from 0 queue(s)" in out
    assert snapshot(raw) == before


@pytest.mark.parametrize("prefix", ["", "old:"])
def test_migrate_keeps_ids_args_and_due_times_and_our_worker_runs_them(
        legacy: int, redis_url: str, raw: Any, app: rpqueue.RPQueue, rcli: Any, prefix: str,
        capsys: pytest.CaptureFixture[str], started: list[Worker], tmp_path: Path) -> None:
    ids = [r["id"] for r in run_legacy(legacy, prefix, STEPS)]
    p = prefix.encode()
    due = {i.decode(): s for i, s in raw.zrange(p + b"queue:alpha", 0, -1, withscores=True)}
    assert set(due) == {ids[4], ids[5]}

    out = migrate_cli(capsys, redis_url, prefix)
    assert "moved 6 task(s) from 2 queue(s)" in out
    assert row(out, "alpha") == ["3", "2", "0", "5", "0"]

    # The 0.33 keys that held the tasks are gone.
    for part in PARTS:
        for q in ("alpha", "beta"):
            assert not raw.exists(p + part.encode() + q.encode()), part + q
    # Ours hold them with their ids; delayed ones keep their due time, in ms.
    alpha, beta = app.keys.queue("alpha"), app.keys.queue("beta")
    assert rcli.lrange(alpha.ready, 0, -1) == [*ids[0:2], ids[3]]
    assert rcli.lrange(beta.ready, 0, -1) == [ids[2]]
    assert {i: int(s) for i, s in rcli.zrange(alpha.delayed, 0, -1, withscores=True)} == {
        i: round(s * 1000) for i, s in due.items()}
    greet = json.loads(unstamp(rcli.hget(beta.msg, ids[2])))
    assert greet == {"v": 1, "id": ids[2], "name": "legacy_tasks.greet", "queue": "beta",
                     "args": ["héllo"], "kwargs": {"name": {"k": [1, 2.5]}}}
    assert rcli.hget(alpha.stats, "enqueued") == "5"
    assert set(rpqueue.known_queues()) == {"alpha", "beta"}

    # A second run moves nothing and changes nothing.
    ours = snapshot(raw, "rpqueue:*")
    again = migrate_cli(capsys, redis_url, prefix)
    assert "moved 0 task(s) from 0 queue(s)" in again
    assert snapshot(raw, "rpqueue:*") == ours

    started.append(Worker(tmp_path, "migrated_tasks", redis_url))
    runs = wait_until(lambda: r if len(r := [json.loads(x) for x in rcli.lrange(RAN, 0, -1)]) >= 5
                      else None, what="the migrated tasks to run")
    by_id = {r["id"]: r for r in runs}
    assert by_id[ids[0]] == {"task": "add", "args": [1, 2], "kwargs": {}, "id": ids[0],
                             "queue": "alpha"}
    assert by_id[ids[1]]["args"] == [3] and by_id[ids[1]]["kwargs"] == {"b": 4}
    assert by_id[ids[2]]["args"] == ["héllo"]
    assert by_id[ids[2]]["kwargs"] == {"name": {"k": [1, 2.5]}}
    # The attempts left travel as _attempts, which the task receives.
    assert by_id[ids[3]]["kwargs"] == {"_attempts": 3}
    assert by_id[ids[5]]["args"] == [9]  # the delayed one, once due
    assert len(runs) == 5
    assert app.store.run(app.store.calls.status("alpha", ids[4])) == "early"


def test_running_retried_periodic_and_damaged_entries(
        legacy: int, redis_url: str, raw: Any, app: rpqueue.RPQueue, rcli: Any,
        capsys: pytest.CaptureFixture[str], started: list[Worker], tmp_path: Path) -> None:
    replies = run_legacy(legacy, "", [
        {"op": "execute", "task": "vis_long", "args": [1]},
        {"op": "take", "queue": "vis"},  # running: its visibility timeout is 60 s away
        {"op": "execute", "task": "vis_retry", "args": [2]},
        {"op": "take", "queue": "vis"},  # times out after 1 s, attempts left
        {"op": "execute", "task": "vis_once", "args": [3]},
        {"op": "take", "queue": "vis"},  # times out after 1 s, no attempts left
        {"op": "execute", "task": "soon", "args": [4], "delay": 0.1},
        {"op": "sleep", "seconds": 1.3},
        {"op": "handle_delayed", "queue": "pq"},  # a 0.33 worker moves it to pqueue:pq
        {"op": "execute", "task": "add", "args": [5]},
        {"op": "periodic", "name": "tick", "queue": "alpha", "every": 60},
        {"op": "priority", "queue": "alpha", "value": 5},
    ])
    long_id, retry_id, once_id, soon_id, add_id = (replies[i]["id"] for i in (0, 2, 4, 6, 9))
    assert [replies[i]["id"] for i in (1, 3, 5)] == [long_id, retry_id, once_id]
    assert raw.lrange(b"pqueue:pq", 0, -1) == [soon_id.encode()]
    # Damage no rpqueue would write, plus a dead letter.
    raw.hset(b"messages:alpha", b"bad1", b"not json")
    raw.rpush(b"nqueue:alpha", b"bad1", b"ghost")  # ghost: an id without a message
    raw.rpush(b"nqueue:DEADLETTER_QUEUE", b'["x", "legacy_tasks.add", [], {}, 0]')

    out = migrate_cli(capsys, redis_url, "")
    assert "moved 3 task(s) from 3 queue(s)" in out
    assert row(out, "vis") == ["0", "0", "1", "1", "2"]
    assert row(out, "pq") == ["1", "0", "0", "1", "0"]
    assert row(out, "alpha") == ["1", "0", "0", "1", "2"]
    assert f"vis: left {long_id}: running:" in out
    assert f"vis: left {once_id}: expired:" in out
    assert "alpha: left bad1: bad: message is not JSON" in out
    assert "alpha: left legacy_tasks.tick: periodic:" in out
    assert "alpha: dropped 1 id(s) without a message" in out
    assert "priority of 'alpha': 5 (copied)" in out
    assert "left 1 0.33 dead letter(s) in place" in out
    assert app.priorities() == {"alpha": 5.0}

    # What stays is exactly what was reported.
    assert raw.lrange(b"nqueue:alpha", 0, -1) == [b"bad1"]
    assert set(raw.hkeys(b"messages:alpha")) == {b"bad1", b"legacy_tasks.tick"}
    assert set(raw.zrange(b"invisible:vis", 0, -1)) == {long_id.encode(), once_id.encode()}
    assert not raw.exists(b"pqueue:pq", b"messages:pq")
    # The retried one carries its attempts left and visibility timeout here.
    vis = app.keys.queue("vis")
    assert rcli.hget(vis.meta, retry_id) == "1000 3 3 0"
    assert json.loads(unstamp(rcli.hget(vis.msg, retry_id)))["kwargs"] == {"_attempts": 3}

    # Named by hand, the dead-letter list is still not read as a queue of ids.
    again = migrate_cli(capsys, redis_url, "", "--legacy-queue", "DEADLETTER_QUEUE")
    assert "moved 0 task(s)" in again and f"vis: left {long_id}: running:" in again
    assert "DEADLETTER_QUEUE holds 0.33's dead letters, not a queue: left alone" in again
    assert raw.llen(b"nqueue:DEADLETTER_QUEUE") == 1

    started.append(Worker(tmp_path, "migrated_tasks", redis_url))
    runs = wait_until(lambda: r if len(r := [json.loads(x) for x in rcli.lrange(RAN, 0, -1)]) >= 3
                      else None, what="the migrated tasks to run")
    assert {r["id"]: (r["task"], r["args"]) for r in runs} == {
        retry_id: ("vis_retry", [2]), soon_id: ("soon", [4]), add_id: ("add", [5])}


def test_switching_a_running_system_runs_every_task_exactly_once(
        legacy: int, redis_url: str, raw: Any, app: rpqueue.RPQueue, rcli: Any,
        started: list[Worker], tmp_path: Path) -> None:
    """A 0.33 worker and producer keep going while tasks are migrated, then stop."""
    run_legacy(legacy, "", [{"op": "execute", "task": "add", "args": [n]} for n in range(600)])
    old_worker = start_legacy("legacy_worker.py", str(legacy), "", "alpha")
    producer = None
    try:
        assert old_worker.stdout is not None and old_worker.stdout.readline().strip() == "ready"

        def runs() -> list[dict[str, Any]]:
            return [json.loads(x) for x in rcli.lrange(RAN, 0, -1)]

        wait_until(lambda: len(runs()) >= 50, what="the 0.33 worker to run tasks")
        producer = start_legacy("legacy_producer.py")
        steps: list[dict[str, Any]] = []
        for n in range(600, 900):
            steps += [{"op": "execute", "task": "add", "args": [n]},
                      {"op": "sleep", "seconds": 0.002}]
        assert producer.stdin is not None
        plan: dict[str, Any] = {"port": legacy, "prefix": "", "steps": steps}
        producer.stdin.write(json.dumps(plan))
        producer.stdin.close()
        first = migrate_legacy(app.ctx)
        started.append(Worker(tmp_path, "migrated_tasks", redis_url, ["alpha"]))
        assert producer.wait(30) == 0
        old_worker.terminate()
        assert old_worker.wait(30) == 0
        last = migrate_legacy(app.ctx)
    finally:
        for proc in (old_worker, producer):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert first.moved > 0
    done = wait_until(lambda: r if len(r := runs()) >= 900 else None, timeout=30,
                      what="every task to run once")
    numbers = sorted(r["args"][0] for r in done)
    assert numbers == list(range(900)), "lost or duplicated: " + str(
        sorted(set(range(900)) ^ set(numbers)) or [n for n in numbers if numbers.count(n) > 1])
    by_legacy = sum(1 for r in done if r.get("by") == "legacy")
    assert by_legacy >= 50 and by_legacy < 900
    assert first.moved + last.moved == 900 - by_legacy
    assert not raw.exists(b"messages:alpha", b"nqueue:alpha", b"pqueue:alpha", b"queue:alpha")


def test_a_crash_midway_neither_loses_nor_duplicates(legacy: int, raw: Any,
                                                     app: rpqueue.RPQueue, rcli: Any) -> None:
    steps: list[dict[str, Any]] = [{"op": "execute", "task": "add", "args": [n]} for n in range(7)]
    steps += [{"op": "execute", "task": "add", "args": [n], "delay": 60} for n in range(3)]
    ids = [r["id"] for r in run_legacy(legacy, "", steps)]

    class Crash(Exception):
        pass

    def crash(done: int) -> None:
        raise Crash

    with pytest.raises(Crash):
        migrate_legacy(app.ctx, batch=3, progress=crash)
    k = app.keys.queue("alpha")
    ours = set(rcli.hkeys(k.msg))
    theirs = {i.decode() for i in raw.hkeys(b"messages:alpha")}
    assert len(ours) == 3 and not ours & theirs and ours | theirs == set(ids)
    assert len(rcli.lrange(k.ready, 0, -1)) == 3

    report = migrate_legacy(app.ctx)
    assert report.moved == 7
    assert set(rcli.hkeys(k.msg)) == set(ids)
    assert sorted(rcli.lrange(k.ready, 0, -1)) == sorted(ids[:7])
    assert rcli.zcard(k.delayed) == 3
    assert not raw.exists(b"messages:alpha", b"nqueue:alpha", b"queue:alpha")


def test_same_id_pending_here_is_replaced_and_running_here_is_left(
        legacy: int, raw: Any, app: rpqueue.RPQueue, rcli: Any) -> None:
    a, b = (r["id"] for r in run_legacy(legacy, "", [
        {"op": "execute", "task": "add", "args": [1]},
        {"op": "execute", "task": "add", "args": [2]}]))
    # A pending copy of a (as if an earlier, non-atomic copy had crashed), and
    # a task with b's id running here.
    rpqueue.call_task("legacy_tasks.add", "alpha", "stale copy", taskid=a)
    k = app.keys.queue("alpha")
    rcli.zadd(k.leases, {b: 1})

    report: MigrationReport = migrate_legacy(app.ctx)
    (alpha,) = report.queues
    assert alpha.waiting == 1 and list(alpha.left) == [b] and alpha.left[b].startswith("busy")
    assert rcli.lrange(k.ready, 0, -1) == [a]
    assert json.loads(unstamp(rcli.hget(k.msg, a)))["args"] == [1]
    assert raw.lrange(b"nqueue:alpha", 0, -1) == [b.encode()]

    rcli.zrem(k.leases, b)
    assert migrate_legacy(app.ctx).moved == 1
    assert rcli.lrange(k.ready, 0, -1) == [a, b]


def test_migration_refuses_on_cluster_like_clients(app: rpqueue.RPQueue,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(type(app.store), "cluster", property(lambda self: True))
    with pytest.raises(ValueError, match="single Redis server"):
        migrate_legacy(app.ctx)
