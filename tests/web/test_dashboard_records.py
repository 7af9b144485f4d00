"""Issue #25, items 1, 5 and 6: one malformed record never fails a view, and
listings carry cut arguments (the full value is on the task's own page).

Records are written with plain commands, as a hostile or buggy producer
would; the API, the command line and the read model all read them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from dashboard_support import TestClient, add_dead, enqueue

from rpqueue.app import RPQueue
from rpqueue.views.items import PREVIEW_CHARS

# Dead-letter records no client of ours writes: not JSON objects, fields of
# the wrong types, non-JSON numbers, a message that is not text.
BAD_RECORDS: dict[str, Any] = {
    "list": "[1,2]",
    "string": '"just text"',
    "not-json": "{oops",
    "time-text": json.dumps({"message": "{}", "time": "x", "reason": "r"}),
    "message-number": json.dumps({"message": 7, "time": 1.0}),
    "message-object": json.dumps({"message": {"name": "t"}, "time": 1.0}),
    "nan-time": '{"message": "{}", "time": NaN}',
    "fields-typed-wrong": json.dumps({"message": '{"v":1,"id":"i","name":"t","args":[]}', "reason": [1],
                                      "error": {"a": 1}, "attempts_used": "two",
                                      "priority": "high", "time": True}),
    "nan-args": json.dumps({"message": '{"v":1,"name":"t","args":[NaN]}', "time": 2.0}),
    "overflow-args": json.dumps({"message": '{"v":1,"name":"t","args":[1e400]}', "time": 3.0}),
}


def write_bad_dead(rpq: RPQueue, queue: str = "q") -> None:
    k = rpq.keys.queue(queue)
    for n, (taskid, raw) in enumerate(BAD_RECORDS.items()):
        rpq.client.hset(k.deadmsg, taskid, raw)
        rpq.client.zadd(k.dead, {taskid: 1000 + n})
    rpq.client.zadd(rpq.keys.queues, {queue: 1.0}, nx=True)


def test_every_malformed_dead_letter_is_listed_as_unreadable_with_its_id(
        rpq: RPQueue, client: TestClient) -> None:
    write_bad_dead(rpq)
    good = add_dead(rpq, "q", "t.fine", [1, 2])
    r = client.get("/api/dead")
    assert r.status_code == 200, r.text
    items = {i["id"]: i for i in r.json()["items"]}
    assert set(items) == {*BAD_RECORDS, good}
    assert items[good].get("unreadable") is None and items[good]["name"] == "t.fine"
    for taskid in ("list", "string", "not-json", "message-number", "message-object", "nan-time"):
        assert items[taskid]["unreadable"] is True, items[taskid]
        assert items[taskid]["reason"] == "unreadable dead-letter record"
    assert items["time-text"]["time"] is None
    odd = items["fields-typed-wrong"]
    assert odd["reason"] is None and odd["error"] is None and odd["attempts_used"] is None
    assert odd["time"] is None and odd["name"] == "t"
    for taskid in ("nan-args", "overflow-args"):
        assert "name" not in items[taskid] or items[taskid]["name"] is None
    assert r.json()["total"] == len(BAD_RECORDS) + 1


def test_the_command_line_lists_malformed_dead_letters(rpq: RPQueue, redis_url: str) -> None:
    write_bad_dead(rpq)
    env = {**os.environ, "COLUMNS": "400"}
    for extra in ([], ["--json"]):
        done = subprocess.run([sys.executable, "-m", "rpqueue", "dead", *extra, "--url", redis_url],
                              capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 0, done.stderr
        for taskid in BAD_RECORDS:
            assert taskid in done.stdout, (taskid, done.stdout)
        assert "Traceback" not in done.stderr


def write_bad_workers(rpq: RPQueue) -> None:
    now = float(rpq.redis_time())
    good = {"id": "w-good", "host": "h", "pid": 1, "queues": ["q"], "threads": 1,
            "started": now, "beat": now, "running": [], "done": 0, "failed": 0, "tasks": []}
    entries = {
        "w-good": json.dumps(good),
        "w-running-null": json.dumps({**good, "id": "w-running-null", "running": [None]}),
        "w-running-text": json.dumps({**good, "id": "w-running-text", "running": "busy"}),
        "w-queues": json.dumps({**good, "id": "w-queues", "queues": [1, None], "threads": "x",
                                "started": "yesterday"}),
        "w-list": "[1,2]",
        "w-nan": '{"beat": NaN, "running": [null]}',
    }
    rpq.client.hset(rpq.keys.workers, mapping=entries)


def test_malformed_worker_entries_never_break_the_workers_view(
        rpq: RPQueue, client: TestClient) -> None:
    write_bad_workers(rpq)
    r = client.get("/api/workers")
    assert r.status_code == 200, r.text
    workers = {w["id"]: w for w in r.json()["workers"]}
    assert "w-good" in workers and "unreadable" not in workers["w-good"]
    assert workers["w-running-null"]["running"] == [
        {"id": "?", "task": "(unreadable)", "queue": "?", "for": 0.0}]
    assert workers["w-running-null"]["unreadable"] == ["running"]
    assert workers["w-running-text"]["running"] == []
    assert set(workers["w-queues"]["unreadable"]) == {"queues", "threads", "started"}
    for w in workers.values():
        assert isinstance(w["running"] if "running" in w else [], list)


def test_the_command_line_lists_malformed_worker_entries(rpq: RPQueue, redis_url: str) -> None:
    write_bad_workers(rpq)
    env = {**os.environ, "COLUMNS": "400"}
    done = subprocess.run([sys.executable, "-m", "rpqueue", "workers", "--url", redis_url],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert "w-good" in done.stdout and "w-running-null" in done.stdout, done.stdout
    assert "Traceback" not in done.stderr


def test_queue_items_with_non_json_numbers_are_listed_with_the_reason(
        rpq: RPQueue, client: TestClient) -> None:
    k = rpq.keys.queue("q")
    rpq.client.hset(k.msg, "nan-task", '{"v":1,"id":"nan-task","name":"t","args":[NaN]}')
    rpq.client.rpush(k.ready, "nan-task")
    enqueue(rpq, "t.fine", "q", 1)
    r = client.get("/api/items", params={"queue": "q"})
    assert r.status_code == 200, r.text
    items = {i["id"]: i for i in r.json()["items"]}
    assert "NaN" in items["nan-task"]["error"]


# -- item 6: cut arguments ---------------------------------------------------------------


@pytest.mark.parametrize("where", ["items", "dead"])
def test_listings_cut_long_arguments_and_the_task_page_has_them_whole(
        rpq: RPQueue, client: TestClient, where: str) -> None:
    big = "x" * 200_000
    if where == "items":
        taskid = str(enqueue(rpq, "t.big", "q", big, note="y" * 100_000).taskid)
        listed = client.get("/api/items", params={"queue": "q"})
        full = client.get("/api/task", params={"queue": "q", "id": taskid})
    else:
        taskid = add_dead(rpq, "q", "t.big", [big], error="e" * 100_000)
        listed = client.get("/api/dead")
        full = client.get("/api/dead/item", params={"queue": "q", "id": taskid})
    assert listed.status_code == 200 and len(listed.content) < 20_000, len(listed.content)
    (item,) = listed.json()["items"]
    assert "args" in item["truncated"] and item["sizes"]["args"] > 200_000
    assert isinstance(item["args"], str) and len(item["args"]) <= PREVIEW_CHARS + 1
    assert full.status_code == 200 and full.json()["args"] == [big]
    missing = client.get("/api/task" if where == "items" else "/api/dead/item",
                         params={"queue": "q", "id": "nope"})
    assert missing.status_code == 404


def test_the_command_line_cuts_long_dead_letter_fields(rpq: RPQueue, redis_url: str) -> None:
    taskid = add_dead(rpq, "q", "t.big", ["x" * 200_000], error="e" * 100_000)
    env = {**os.environ, "COLUMNS": "400"}
    listed = subprocess.run([sys.executable, "-m", "rpqueue", "dead", "--json", "--url",
                             redis_url], capture_output=True, text=True, timeout=60, env=env)
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout) < 20_000
    # Asked for by id: whole.
    one = subprocess.run([sys.executable, "-m", "rpqueue", "dead", "--json", "--id", taskid,
                          "--url", redis_url], capture_output=True, text=True, timeout=60,
                         env=env)
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["dead"][0]["args"] == ["x" * 200_000]


def test_an_oversized_dead_letter_kept_as_its_head_is_readable(
        rpq: RPQueue, client: TestClient) -> None:
    # The record the take script writes for a message over the limit.
    k = rpq.keys.queue("q")
    rpq.client.hset(k.deadmsg, "big", json.dumps({
        "id": "big", "message_head": '{"v":1,"id":"big","name":"t.x","args":["xxx',
        "message_size": 5_000_000, "truncated": True, "reason": "oversized message",
        "error": "message of 5000000 bytes exceeds the limit of 1048576 bytes",
        "attempts_used": 0, "time": 5.0}))
    rpq.client.zadd(k.dead, {"big": 5000})
    rpq.client.zadd(rpq.keys.queues, {"q": 1.0})
    (item,) = client.get("/api/dead").json()["items"]
    assert item["reason"] == "oversized message" and "unreadable" not in item
    assert item["message_size"] == 5_000_000
