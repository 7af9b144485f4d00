"""Issue #11: rpqueue works under an ACL user confined to its key prefix with
a command allowlist, and that user can do nothing else.

The ACL line is read from docs/SECURITY.md, so the documented line is the
tested one. The big test runs a real worker (with a scheduler), a producer
(sync and asyncio), the inspection and admin API, the CLI, locks and data
queues as that user; Redis's ``ACL LOG`` must stay empty: not one command
rpqueue sent was refused.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
import sec_tasks
from conftest import ACL_PASSWORD, ACL_PREFIX, ACL_USER, ACLServer
from redis.exceptions import NoPermissionError, ResponseError
from sec_helpers import Worker, documented_acl_line, wait_until, worker_argv

import rpqueue
from rpqueue import DEADLETTER_QUEUE, admin, cli
from rpqueue.data import Data
from rpqueue.registry import live_workers
from rpqueue.task import TaskRef

OTHER = "other:"
# How Redis words a refusal, directly or inside a script.
REFUSED = "(?i)no permissions|can't access|can't run|not allowed from script"


def notes(client: Any, tag: str | None = None) -> list[dict[str, Any]]:
    out = [json.loads(n) for n in client.lrange(ACL_PREFIX + "test:notes", 0, -1)]
    return [n for n in out if tag is None or n["tag"] == tag]


def data_queues_workout(app: rpqueue.RPQueue) -> None:
    """Every data-queue operation: puts, the three kinds of read, leases, dead letters."""
    q = Data("sec-data", app=app)
    assert len(q.put_data([1, {"a": 2}, "three"])) == 3
    assert q.currently_available() == (3, 0)
    assert list(q.get_data(1, vis_timeout=-1).values()) == [1]  # a peek leaves it
    assert list(q.get_data(2).values()) == [1, {"a": 2}]  # a 0/1 read removes
    assert list(q.get_data(1, get_timeout=0.1).values()) == ["three"]
    assert Data("sec-empty", app=app).get_data(1, get_timeout=0.2) == {}  # blocks (BLPOP)

    leased = Data("sec-lease", vis_timeout=5, attempts=2, app=app)
    leased.put_data(["a", "b"])
    leased.put_data(["later"], delay=0.05)
    got = leased.get_data_with_receipts(2)
    assert len(got) == 2
    assert sorted(leased.refresh_data(got, vis_timeout=5)) == sorted(got)
    assert leased.done_data(got) == 2
    wait_until(lambda: leased.get_data(1), message="delayed data item")

    relet = Data("sec-relet", vis_timeout=0.05, attempts=2, app=app)
    relet.put_data(["r"])
    assert list(relet.get_data(1).values()) == ["r"]
    time.sleep(0.1)  # the lease ends: readable again
    assert list(relet.get_data(1).values()) == ["r"]

    dying = Data("sec-dead", vis_timeout=0.05, attempts=1, use_dead=True, app=app)
    dying.put_data(["z1", "z2"])
    assert len(dying.get_data(2)) == 2  # leased once, never done: dead when the lease ends
    time.sleep(0.1)
    view = Data("sec-dead", is_dead=True, app=app)
    wait_until(lambda: view.currently_available()[0] == 2, message="two dead data items")
    assert {r["item"] for r in Data.read_dead(app)} == {"z1", "z2"}
    assert len(app.read_deadletter(is_data=True, limit=10)) == 2
    first = Data(DEADLETTER_QUEUE, app=app).get_data(1)  # reads and removes one
    assert len(first) == 1
    rest = view.get_data(5, vis_timeout=-1)
    assert view.done_data(list(rest)) == 1
    dying.put_data(["z3"])
    dying.get_data(1)
    time.sleep(0.1)
    wait_until(lambda: view.currently_available()[0] == 1, message="a third dead item")
    assert view.delete_all() == 1

    # Dead-lettered tasks through the data-queue view.
    assert isinstance(Data(DEADLETTER_QUEUE, is_tasks=True, app=app).get_data(10, vis_timeout=-1),
                      dict)
    assert q.delete_all() >= 0
    assert app.clear_queue("sec-lease", is_data=True) >= 0  # type: ignore[attr-defined]


def test_documented_acl_user_runs_everything_rpqueue_does(
        acl_server: ACLServer, default_app: rpqueue.RPQueue,
        start_worker: Callable[..., Worker], capsys: pytest.CaptureFixture[str]) -> None:
    app, url, admin_client = default_app, acl_server.url(), acl_server.admin
    app.set_redis_url(url)
    app.set_key_prefix(ACL_PREFIX)
    rcli = acl_server.client(decode_responses=True)
    # Queues known before the workers start: each worker serving all queues
    # reads the queue list at start, then only every few seconds.
    app.set_priority("sec-hi", 1)  # type: ignore[attr-defined]
    assert app.priorities() == {"sec-hi": 1.0}
    t = sec_tasks.add.execute(2, 3)
    # Two worker processes (so that one takes over a task whose lease ran out
    # on the other). The URL with the password goes in the environment, not
    # on the command line.
    workers = [start_worker(worker_argv(None, ACL_PREFIX, "sec_periodic_tasks"),
                            env={"RPQUEUE_URL": url}) for _ in range(2)]
    for w in workers:
        w.wait_log("serving")
        assert ACL_PASSWORD.encode() not in Path(f"/proc/{w.proc.pid}/cmdline").read_bytes()

    def logs() -> str:
        return "\n".join(w.log() for w in workers)

    # Producing, sync and asyncio; results.
    wait_until(lambda: t.status == "done", message=logs)
    assert t.result == 5
    assert app.result(t.taskid) == 5  # type: ignore[attr-defined]

    async def produce_async() -> Any:
        handle = await sec_tasks.aadd.aexecute(4, 5)
        return await handle.await_result(15)

    assert asyncio.run(produce_async()) == 9
    sec_tasks.record.execute_many([("many-1",), ("many-2",)])
    sec_tasks.record.execute("late", delay=0.2)
    sec_tasks.record.execute("hi", _queue="sec-hi")
    for tag in ("many-1", "many-2", "late", "hi"):
        wait_until(lambda tag=tag: notes(rcli, tag), message=f"note {tag}")

    # Retries under a visibility timeout, dead letters, abort.
    sec_tasks.flaky.execute("flaky")
    wait_until(lambda: len(notes(rcli, "flaky")) == 2, message="flaky ran twice")
    sec_tasks.outlive.execute("outlive")
    wait_until(lambda: len(notes(rcli, "outlive")) == 2,
               message=lambda: f"lease expired, ran again: {notes(rcli)}\n{logs()}")
    dead = sec_tasks.boom.execute("x")
    wait_until(lambda: app.queue_info("default")["dead"] == 1,  # type: ignore[attr-defined]
               message="boom dead-lettered")
    abortable = sec_tasks.wait_for_abort.execute(10)
    wait_until(lambda: notes(rcli, "abortable started"))
    assert abortable.abort() is True
    wait_until(lambda: abortable.status == "done")
    assert abortable.result == "aborted"

    # Pausing and resuming a queue (workers read the paused set as they go).
    assert rpqueue.pause_queue("sec-hi") is True
    assert rpqueue.paused_queues() == ["sec-hi"] and app.is_paused("sec-hi")
    sec_tasks.record.execute("held", _queue="sec-hi")
    time.sleep(0.2)
    assert rpqueue.resume_queue("sec-hi") is True
    wait_until(lambda: notes(rcli, "held"), message="resumed queue served")

    # Cancelling, deleting, paging, flushing.
    assert sec_tasks.record.execute("never", delay=60).cancel() is True
    pending = sec_tasks.record.execute("never-2", delay=60)
    page = app.get_page("default", 0)  # type: ignore[attr-defined]
    assert [item["id"] for item in page] == [pending.taskid]
    assert app.delete_item("default", pending.taskid) is True  # type: ignore[attr-defined]
    sec_tasks.record.execute("forced", delay=60)
    _, _, waiting = app.flush_tasks(complete=True, force_delayed=True,  # type: ignore[attr-defined]
                                    timeout=15)
    assert waiting == []
    assert notes(rcli, "forced")

    # Inspection and the registry the worker published.
    sizes = {q: n for q, n, _ in app.queue_sizes()}  # type: ignore[attr-defined]
    assert {"default", "sec-hi", "sec-periodic"} <= set(sizes)
    assert "sec_tasks.add" in app.known_tasks  # type: ignore[attr-defined]
    assert app.get_task("sec_tasks.boom") is not None  # type: ignore[attr-defined]
    by_name = app.call_task("sec_tasks.add", None, 1, 2)  # type: ignore[attr-defined]
    wait_until(lambda: by_name.status == "done")
    assert app.results([by_name.taskid]) == [3]  # type: ignore[attr-defined]
    assert sorted(w["pid"] for w in live_workers(app.ctx)) == sorted(w.proc.pid for w in workers)

    # Dead letters: read, requeue (it dies again), purge.
    records = admin.dead_records(app.ctx)
    assert [r["id"] for r in records] == [dead.taskid]
    assert admin.requeue_dead(app.ctx, records) == 1
    wait_until(lambda: admin.dead_records(app.ctx) and dead.status == "done",
               message="requeued task dead again")
    assert admin.delete_dead(app.ctx, admin.dead_records(app.ctx)) == 1

    # The periodic task's scheduler ran under the same user.
    wait_until(lambda: notes(rcli, "tick"), message="a periodic run")

    # A lock under the prefix.
    with rpqueue.SimpleLock(app.client, ACL_PREFIX + "lock:x", 5), pytest.raises(rpqueue.NoLock):
        rpqueue.SimpleLock(app.client, ACL_PREFIX + "lock:x", 5).__enter__()

    data_queues_workout(app)

    # The command line tool, as that user.
    conn = ["--url", url, "--prefix", ACL_PREFIX]
    sec_tasks.boom.execute("for-cli")
    wait_until(lambda: admin.dead_records(app.ctx), message="a dead letter for the CLI")
    for argv in (conn, [*conn, "--queue", "default", "--show-args"], ["schedule", *conn],
                 ["dead", *conn], ["dead", "requeue", *conn], ["workers", *conn]):
        assert cli.main(argv) == 0, argv
    wait_until(lambda: admin.dead_records(app.ctx), message="requeued by the CLI, dead again")
    assert cli.main(["dead", "purge", "--yes", *conn]) == 0
    assert admin.dead_records(app.ctx) == []
    out = capsys.readouterr().out
    assert "purged 1 dead task(s)" in out

    # Removing a queue entirely.
    sec_tasks.record.execute("gone", delay=60)
    assert app.clear_queue("default", delete=True) == 1  # type: ignore[attr-defined]

    for w in workers:
        assert w.stop() == 0, w.log()
    log = logs()
    assert ACL_PASSWORD not in log and f"{ACL_USER}:***@" in log  # where it connected, redacted
    for trouble in ("NOPERM", "no permissions", "thread error", "heartbeat failed",
                    "upkeep failed", "reporting async task", "scheduler error",
                    "Redis unreachable"):
        assert trouble not in log, log
    assert acl_server.acl_log() == [], "commands refused to the documented ACL user"
    # Nothing outside the prefix was written.
    assert [k for k in admin_client.keys("*") if not k.startswith(ACL_PREFIX.encode())] == []
    rcli.close()


def test_dashboard_needs_type_in_addition(acl_server: ACLServer,
                                          default_app: rpqueue.RPQueue) -> None:
    """The dashboard (not needed by workers or producers) also reads key types:
    the documented line plus ``+type`` serves every view and action."""
    model = pytest.importorskip("rpqueue.web.model")
    acl_server.admin.execute_command("ACL", "SETUSER", ACL_USER, "+type")
    app = default_app
    app.set_redis_url(acl_server.url())
    app.set_key_prefix(ACL_PREFIX)
    dead = sec_tasks.boom.execute("x")
    k = app.keys.queue("default")
    admin_client = acl_server.admin
    # Dead-letter it by hand (no worker here): as fail-9.lua would.
    record = json.dumps({"id": dead.taskid, "message": admin_client.hget(k.msg, dead.taskid)
                         .decode(), "reason": "task raised an exception", "attempts_used": 1,
                         "time": time.time()})
    admin_client.hset(k.deadmsg, dead.taskid, record)
    admin_client.zadd(k.dead, {dead.taskid: time.time() * 1000})
    sec_tasks.record.execute("waiting")
    assert {q["name"] if "name" in q else q.get("queue") for q in
            model.queue_overview(app)["queues"]} >= {"default"}
    assert model.queue_items(app, "default", 0, 50)
    assert model.dead_letters(app)["total"] == 1
    model.schedule(app)
    model.workers(app)
    assert model.dead_action(app, "delete", [("default", dead.taskid)])
    assert acl_server.acl_log() == []


# -- what the user cannot do ----------------------------------------------------------


@pytest.mark.parametrize("command", [
    ("FLUSHALL",), ("FLUSHDB",), ("KEYS", "*"), ("SCAN", "0"), ("CONFIG", "GET", "*"),
    ("CONFIG", "SET", "save", ""), ("DEBUG", "SLEEP", "0"), ("SHUTDOWN", "NOSAVE"),
    ("ACL", "SETUSER", ACL_USER, "+@all"), ("ACL", "LIST"), ("SCRIPT", "FLUSH"),
    ("FUNCTION", "FLUSH"), ("CLIENT", "LIST"), ("CLIENT", "KILL", "TYPE", "normal"),
    ("MONITOR",), ("SELECT", "1"), ("SWAPDB", "0", "1"), ("REPLICAOF", "127.0.0.1", "1"),
    ("BGSAVE",), ("INFO",), ("RANDOMKEY",), ("SUBSCRIBE", "anything"),
    ("PUBLISH", "anything", "x"), ("MODULE", "LIST"),
], ids=lambda c: " ".join(c[:2]))
def test_acl_user_cannot_run_admin_or_keyspace_wide_commands(
        acl_server: ACLServer, command: tuple[str, ...]) -> None:
    client = acl_server.client()
    try:
        with pytest.raises(NoPermissionError):
            client.execute_command(*command)
    finally:
        client.close()
    assert acl_server.admin.ping()  # still up, not flushed, not reconfigured


def test_acl_user_cannot_read_or_write_another_prefix(acl_server: ACLServer,
                                                      default_app: rpqueue.RPQueue) -> None:
    admin_client = acl_server.admin
    other_q = OTHER + "q:{default}:"
    admin_client.hset(other_q + "msg", "t1", '{"v":1,"name":"x","args":[]}')
    admin_client.rpush(other_q + "ready", "t1")
    admin_client.set(OTHER + "secret", "s3cret")
    client = acl_server.client()
    try:
        for command in (("GET", OTHER + "secret"), ("SET", OTHER + "secret", "mine"),
                        ("DEL", OTHER + "secret"), ("HGETALL", other_q + "msg"),
                        ("HSET", other_q + "msg", "t2", "{}"), ("LPOP", other_q + "ready"),
                        ("RPUSH", other_q + "ready", "t2"), ("EXISTS", OTHER + "secret"),
                        ("TYPE", OTHER + "secret"), ("UNLINK", other_q + "msg")):
            with pytest.raises(NoPermissionError):
                client.execute_command(*command)
        # Lua cannot escape the key patterns, declared or not.
        for script, keys in (("return redis.call('GET', KEYS[1])", [OTHER + "secret"]),
                             ("return redis.call('GET', 'other:secret')", []),
                             ("return redis.call('LPOP', 'other:q:{default}:ready')", []),
                             ("return redis.call('FLUSHALL')", []),
                             ("return redis.call('KEYS', '*')", []),
                             ("return redis.call('CONFIG', 'GET', '*')", [])):
            with pytest.raises(ResponseError, match=REFUSED):
                client.eval(script, len(keys), *keys)
    finally:
        client.close()

    # rpqueue itself pointed at the other prefix: its scripts are refused.
    app = default_app
    app.set_redis_url(acl_server.url())
    app.set_key_prefix(OTHER)
    with pytest.raises(NoPermissionError):
        TaskRef(app, "sec_tasks.add").execute(1, 2)
    with pytest.raises(NoPermissionError):
        admin.dead_records(app.ctx, ["default"])
    with pytest.raises(NoPermissionError):
        Data("default", app=app).get_data(1)

    assert admin_client.get(OTHER + "secret") == b"s3cret"
    assert admin_client.lrange(other_q + "ready", 0, -1) == [b"t1"]
    assert admin_client.hkeys(other_q + "msg") == [b"t1"]


def test_acl_user_with_wrong_password_is_refused(acl_server: ACLServer) -> None:
    client = redis.Redis.from_url(acl_server.url(password="wrong"), socket_timeout=5)
    try:
        with pytest.raises((redis.AuthenticationError, ResponseError)):
            client.ping()
    finally:
        client.close()


def test_documented_line_parses_for_other_names() -> None:
    words = documented_acl_line("app2", "pw2", "app2:")
    assert words[0] == "app2" and ">pw2" in words and "~app2:*" in words
    assert not any(w.startswith("~") and not w.startswith("~app2:") for w in words)
    assert "-@all" in words and "resetchannels" in words
    assert ACL_PASSWORD not in words and ACL_USER not in words
