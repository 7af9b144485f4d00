"""Issue #25, item 1 and 7: strict decoding, and a worker that writes every outcome.

A message written with plain commands (docs/PROTOCOL.md) that holds NaN,
Infinity, a number too large for a float (1e400 would become inf) or a lone
surrogate is malformed: the worker dead-letters it with the reason and never
runs the task. A task that itself produces text Redis cannot store (a lone
surrogate in its result or its exception) still has its outcome written, and
text a task controls (exception messages) never forges log lines.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from sec_helpers import Worker, dead_records, push_raw, wait_until, worker_argv

import rpqueue
from rpqueue.storage.message import MalformedMessage, decode

PREFIX = "strict:"
QUEUE = "default"


def call(name: str, args_text: str, taskid: str) -> str:
    # Built by hand: json.dumps would refuse or escape what these tests need.
    return f'{{"v":1,"id":"{taskid}","name":"{name}","queue":"{QUEUE}","args":{args_text}}}'


HOSTILE = {
    "nan": ("[NaN]", "NaN"),
    "inf": ("[Infinity]", "Infinity"),
    "neginf": ("[-Infinity]", "-Infinity"),
    "overflow": ("[1e400]", "1e400"),
    "surrogate": ('["\\ud800"]', "lone surrogate"),
    "low-surrogate-key": ('[], "kwargs": {"\\udc00": 1}', "lone surrogate"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_decode_refuses_what_json_does_not_allow(case: str) -> None:
    args_text, said = HOSTILE[case]
    with pytest.raises(MalformedMessage, match=said):
        decode(call("sec_tasks.echo", args_text, "x"))
    with pytest.raises(MalformedMessage):
        decode(call("sec_tasks.echo", args_text, "x").encode("utf-8"))


def test_decode_still_reads_surrogate_pairs_and_large_finite_numbers() -> None:
    message = decode(call("sec_tasks.echo", '["\\ud83d\\ude00", 1e300, -0.5, 12345678901234567890]',
                          "x"))
    assert message.args == ["\U0001F600", 1e300, -0.5, 12345678901234567890]


def test_a_lone_surrogate_in_a_str_message_is_malformed() -> None:
    with pytest.raises(MalformedMessage, match="lone surrogate"):
        decode(call("sec_tasks.echo", '["\ud800"]', "x"))


def test_an_unsupported_protocol_version_is_reported_cut_short() -> None:
    with pytest.raises(MalformedMessage) as caught:
        decode('{"v":"' + "x" * 100_000 + '","name":"t","args":[]}')
    assert len(str(caught.value)) < 200


@pytest.fixture
def raw(redis_url: str, default_app: rpqueue.RPQueue) -> Iterator[redis.Redis]:
    default_app.set_redis_url(redis_url)
    default_app.set_key_prefix(PREFIX)
    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    yield client
    client.close()


def _settled(client: redis.Redis, taskids: list[str]) -> bool:
    k = rpqueue.default_app().keys.queue(QUEUE)
    pipe = client.pipeline(transaction=False)
    for taskid in taskids:
        pipe.hexists(k.msg, taskid)
    return not any(pipe.execute()) and client.zcard(k.leases) == 0


def test_a_worker_dead_letters_non_json_numbers_and_lone_surrogates_with_the_reason(
        raw: redis.Redis, redis_url: str, start_worker: Callable[..., Worker]) -> None:
    worker = start_worker(worker_argv(redis_url, PREFIX, "sec_tasks", QUEUE))
    worker.wait_log("serving")
    ids = []
    for case, (args_text, _) in HOSTILE.items():
        taskid = f"hostile-{case}"
        ids.append(taskid)
        # echo saves its argument as its result: a nan would be visible there.
        push_raw(raw, PREFIX, QUEUE, taskid, call("sec_tasks.echo", args_text, taskid))
    wait_until(lambda: _settled(raw, ids), message=lambda: worker.log())
    records = dead_records(raw, PREFIX, QUEUE)
    for case, (_, said) in HOSTILE.items():
        record = records[f"hostile-{case}"]
        assert record["reason"] == "malformed message", record
        assert said in record["error"], record
        # The task never ran: no result was saved.
        assert raw.get(rpqueue.default_app().keys.queue(QUEUE).result(f"hostile-{case}")) is None
    assert worker.alive(), worker.log()
    assert "worker thread" not in worker.log()


def test_the_outcome_is_written_when_a_task_produces_text_redis_cannot_store(
        raw: redis.Redis, redis_url: str, start_worker: Callable[..., Worker]) -> None:
    worker = start_worker(worker_argv(redis_url, PREFIX, "sec_tasks", QUEUE))
    worker.wait_log("serving")
    k = rpqueue.default_app().keys.queue(QUEUE)
    ids = {}
    for kind in ("result", "raise", "forge"):
        taskid = f"produce-{kind}"
        push_raw(raw, PREFIX, QUEUE, taskid, call("sec_tasks.hostile", json.dumps([kind]), taskid))
        ids[kind] = taskid
    # Settled means: no message and no lease left, so nothing ends "lost" later.
    wait_until(lambda: _settled(raw, list(ids.values())), message=lambda: worker.log())
    # The result could not be saved as UTF-8: null instead, and the task is done.
    assert raw.get(k.result("produce-result")) in (None, b"null")
    assert "lone surrogate" in worker.log()
    assert "lone \\\\udc00 surrogate" in worker.log()
    log = worker.log()
    # Item 7: the exception message is in the log, escaped; the traceback too.
    assert "first line\\nCRITICAL rpqueue.worker forged line" in log, log
    assert "Traceback" in log or "File " in log, log
    assert not any(line.startswith("CRITICAL rpqueue.worker forged")
                   for line in log.splitlines()), log
    assert worker.alive(), log



def test_security_md_names_only_scripts_that_exist() -> None:
    import re

    from sec_helpers import SECURITY_MD

    from rpqueue.storage import scripts

    folder = Path(scripts.__file__).parent
    named = set(re.findall(r"[\w/-]+\.lua", SECURITY_MD.read_text(encoding="utf-8")))
    assert named, "SECURITY.md names no script"
    missing = [n for n in named if not (folder / n).exists()]
    assert missing == [], missing
