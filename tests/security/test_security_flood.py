"""Issue #25, item 8: a producer that floods the queue-name index.

Each queue name a producer makes up stays in the known-queues index: the
dashboard and the dead-letter listing must not cost per name more than the
one pipelined count (the listing reads ids only where there are dead
letters), and ``prune_queues`` / ``rpqueue prune`` forget names that are
empty, unused and without settings, and nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import redis

import rpqueue
from rpqueue.task import TaskRef
from rpqueue.views import dead

PREFIX = "flood:"
NAMES = 2000


@pytest.fixture
def app(redis_url: str, default_app: rpqueue.RPQueue) -> Iterator[rpqueue.RPQueue]:
    default_app.set_redis_url(redis_url)
    default_app.set_key_prefix(PREFIX)
    yield default_app


def flood(client: redis.Redis, names: int = NAMES, age: float = 10 * 86400) -> list[str]:
    made = [f"junk-{i}" for i in range(names)]
    client.zadd(PREFIX + "queues", {name: time.time() - age for name in made})
    return made


def add_dead(client: redis.Redis, queue: str, taskid: str) -> None:
    k = f"{PREFIX}q:{{{queue}}}:"
    message = json.dumps({"v": 1, "id": taskid, "name": "t.x", "queue": queue, "args": []})
    client.hset(k + "deadmsg", taskid, json.dumps({"message": message, "reason": "r",
                                                   "time": 1.0}))
    client.zadd(k + "dead", {taskid: 1000})
    client.zadd(PREFIX + "queues", {queue: time.time() - 10 * 86400})


def command_calls(client: redis.Redis, name: str) -> int:
    stats = client.info("commandstats").get(f"cmdstat_{name}")
    return int(stats["calls"]) if stats else 0


def test_the_dead_letter_listing_reads_ids_only_where_there_are_dead_letters(
        app: rpqueue.RPQueue, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    flood(client)
    add_dead(client, "real", "d1")
    client.config_resetstat()
    listed = dead.listing(app.ctx)
    assert listed["total"] == 1 and [i["id"] for i in listed["items"]] == ["d1"]
    assert command_calls(client, "zrange") <= 2  # the index, and the one queue with dead letters
    assert command_calls(client, "hmget") == 1


def test_prune_forgets_only_empty_unused_names_without_settings(
        app: rpqueue.RPQueue, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    made = flood(client, 300)
    add_dead(client, "holds-dead", "d1")
    app.set_priority("has-priority", 3)
    client.zadd(PREFIX + "queues", {"has-priority": time.time() - 10 * 86400})
    # A queue with a waiting task, registered long ago.
    TaskRef(app, "t.x", queue="busy").execute(1)
    client.zadd(PREFIX + "queues", {"busy": time.time() - 10 * 86400})
    recent = flood(client, 5, age=10)
    recent_names = {f"junk-{i}" for i in range(5)}
    assert set(recent) == recent_names
    would = app.prune_queues(idle=86400, dry_run=True)
    assert len(client.zrange(PREFIX + "queues", 0, -1)) >= 300
    pruned = app.prune_queues(idle=86400)
    assert sorted(pruned) == sorted(would)
    left = {q.decode() for q in client.zrange(PREFIX + "queues", 0, -1)}
    assert {"holds-dead", "has-priority"} <= left
    assert set(made) - recent_names <= set(pruned)
    assert not (set(pruned) & {"holds-dead", "has-priority", "busy"})
    with pytest.raises(ValueError, match="idle"):
        app.prune_queues(idle=float("nan"))


def test_rpqueue_prune_on_the_command_line(app: rpqueue.RPQueue, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    flood(client, 50)
    env = {**os.environ, "COLUMNS": "200"}
    base = [sys.executable, "-m", "rpqueue", "prune", "--url", redis_url, "--prefix", PREFIX]
    dry = subprocess.run([*base, "--dry-run", "--json", "--idle", "3600"], capture_output=True,
                         text=True, timeout=60, env=env)
    assert dry.returncode == 0, dry.stderr
    assert len(json.loads(dry.stdout)["would_prune"]) == 50
    assert client.zcard(PREFIX + "queues") == 50
    done = subprocess.run([*base, "--idle", "3600"], capture_output=True, text=True, timeout=60,
                          env=env)
    assert done.returncode == 0, done.stderr
    assert "forgot 50 queue name(s)" in done.stdout
    assert client.zcard(PREFIX + "queues") == 0
