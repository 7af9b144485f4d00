"""One task in full, wherever it is: queued, running, finished or dead.

The dashboard's task page and ``GET /api/task/{id}`` read it here: the
message (from the queue or the dead letter), the state record with its
attempts, timings and error traceback (docs/TASK_STATE.md), the last
progress report, and the saved result. Also the per-task action the page
offers on queued tasks: deleting one before it runs, and running a
delayed one now.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from .. import taskstate
from ..context import Context
from ..storage import reads
from ..storage.executor import raise_first
from ..storage.keys import normalize_queue
from ..storage.wire import CancelOutcome
from .dead import get_record
from .items import get_item

# A result bigger than this (as JSON text) is shown cut: the page is not the
# place to ship megabytes, and ``EnqueuedTask.get()`` has the whole value.
RESULT_CHARS = 20_000


def _result(raw: Any) -> dict[str, Any] | None:
    """The saved result as JSON text (cut past RESULT_CHARS), or None if none is kept."""
    if raw is None:
        return None
    body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    try:
        shown = json.dumps(json.loads(body), ensure_ascii=False)
    except ValueError:
        shown = body
    if len(shown) > RESULT_CHARS:
        return {"text": shown[:RESULT_CHARS] + "…", "truncated": True, "size": len(shown)}
    return {"text": shown, "truncated": False}


def detail(ctx: Context, queue: str | bytes, taskid: str) -> dict[str, Any] | None:
    """Everything known about one task of ``queue``, or None when nothing is.

    Keys: ``id``, ``queue``, ``state`` (see docs/TASK_STATE.md), ``attempt``
    and ``attempts``, ``finished`` (unix time, when ended), ``error`` (type,
    message, traceback, attempt, worker, time), ``progress`` (done, total,
    note, time, fraction), ``result`` (JSON text), and from the message when
    it is still stored (queued or dead): ``name``, ``args``, ``kwargs``,
    ``priority``, ``unique_key``; ``dead`` holds the dead letter.
    """
    name = normalize_queue(queue)
    store = ctx.store
    st = taskstate.read(store, name, taskid)
    queued = get_item(ctx, name, taskid)
    dead = get_record(ctx, name, taskid)
    result = _result(store.read_result(name, taskid))
    if st.state == "unknown" and queued is None and dead is None and result is None \
            and st.progress is None:
        return None
    out: dict[str, Any] = {"id": taskid, "queue": name, "state": st.state,
                           "attempt": st.attempt, "attempts": st.attempts, "finished": st.time,
                           "error": asdict(st.error) if st.error else None,
                           "progress": None, "result": result, "dead": dead}
    if st.progress is not None:
        out["progress"] = dict(asdict(st.progress), fraction=st.progress.fraction)
    source = queued or dead
    if source is not None:
        for key in ("name", "args", "kwargs", "priority", "unique_key"):
            if key in source and source[key] is not None:
                out[key] = source[key]
    return out


def delete(ctx: Context, queue: str | bytes, taskid: str) -> bool:
    """Remove a waiting or delayed task before it runs; False when it is not
    queued (unknown, running or finished). Its state becomes ``cancelled``."""
    name = normalize_queue(queue)
    # cancel-8.lua also deletes a finished task's saved result: only a task
    # still queued is handed to it.
    if get_item(ctx, name, taskid) is None:
        return False
    code = ctx.store.run(ctx.store.calls.cancel(name, taskid))
    return code == CancelOutcome.CANCELLED


def run_now(ctx: Context, queue: str | bytes, taskid: str) -> bool:
    """Make a delayed task due at once (the next take moves it to the front
    of the waiting ones, as any task coming due); False when it is not delayed.

    The move itself only rewrites the task's due time if it is still in the
    delayed set (ZADD XX), so a task taken meanwhile is left alone.
    """
    name = normalize_queue(queue)
    if taskstate.read(ctx.store, name, taskid).state != "delayed":
        return False
    reads.make_due(ctx.store, name, [taskid], [])
    return True


def find(ctx: Context, taskid: str) -> list[dict[str, Any]]:
    """Every known queue that knows task ``taskid`` (queued, running, with a
    state record or a dead letter), as ``{"queue", "state"}``: a search by id
    when the queue is not known. Two round trips whatever the number of queues."""
    store = ctx.store
    queues = store.known_queues()
    if not queues:
        return []
    replies = raise_first(store.pipeline([store.calls.task_state(q, taskid) for q in queues]))
    dead = reads.dead_messages(store, [(q, [taskid]) for q in queues])
    out = []
    for q, reply, found in zip(queues, replies, dead):
        state = taskstate.from_reply(reply).state
        if state == "unknown" and found[0] is not None:
            state = "dead"
        if state != "unknown":
            out.append({"queue": q, "state": state})
    return out
