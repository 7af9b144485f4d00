"""Run by the python of a venv holding the real rpqueue 0.33.7 from PyPI.

Reads a JSON plan on stdin and prints one JSON line per step with what
rpqueue 0.33.7 returned, so the tests queue work exactly as the original
does (its own code writes its own keys). Plan::

    {"port": 6379, "db": 0, "prefix": "", "steps": [
        {"op": "execute", "task": "add", "args": [1, 2], "kwargs": {}, "delay": 0},
        {"op": "take", "queue": "vis"},          # a worker's take, without running it
        {"op": "handle_delayed", "queue": "pq"},  # a worker's delayed-task pass
        {"op": "priority", "queue": "alpha", "value": 5},
        {"op": "periodic", "name": "tick", "queue": "alpha", "every": 60},  # as a worker schedules it
        {"op": "sleep", "seconds": 0.2}]}

Python 3 needs bytes queue names with rpqueue 0.33.
"""

import json
import sys
import time

import rpqueue

assert rpqueue.VERSION == "0.33.7", rpqueue.VERSION

plan = json.load(sys.stdin)
rpqueue.set_redis_connection_settings("127.0.0.1", plan["port"], plan.get("db", 0))
if plan.get("prefix"):
    rpqueue.set_key_prefix(plan["prefix"].encode("latin-1"))


def define(name, queue, **options):
    def body(*args, **kwargs):
        return None

    return rpqueue.task(queue=queue.encode("utf-8"), name="legacy_tasks." + name, **options)(body)


TASKS = {
    "add": define("add", "alpha"),
    "greet": define("greet", "beta"),
    "retrying": define("retrying", "alpha", attempts=3),
    "vis_long": define("vis_long", "vis", vis_timeout=60),
    "vis_retry": define("vis_retry", "vis", vis_timeout=1, attempts=3),
    "vis_once": define("vis_once", "vis", vis_timeout=1, use_dead=True),
    "soon": define("soon", "pq"),
}

conn = rpqueue.get_connection()
for step in plan["steps"]:
    op = step["op"]
    if op == "execute":
        kwargs = dict(step.get("kwargs", {}))
        if step.get("delay"):
            kwargs["delay"] = step["delay"]
        if step.get("queue"):
            kwargs["_queue"] = step["queue"].encode("utf-8")
        handle = TASKS[step["task"]].execute(*step.get("args", []), **kwargs)
        print(json.dumps({"op": op, "id": handle.taskid}))
    elif op == "take":
        work = rpqueue._get_work(conn, [step["queue"].encode("utf-8")], 1)
        print(json.dumps({"op": op, "id": work[0] if work else None}))
    elif op == "handle_delayed":
        rpqueue.handle_delayed_lua_(conn, [step["queue"].encode("utf-8")], 0)
        print(json.dumps({"op": op}))
    elif op == "priority":
        rpqueue.set_priority(step["queue"].encode("utf-8"), step["value"])
        print(json.dumps({"op": op}))
    elif op == "periodic":
        # A 0.33 worker process sets EXECUTE_TASKS; defining a periodic task
        # then queues its first run, with the task's name as its id.
        rpqueue.EXECUTE_TASKS = True
        rpqueue.periodic_task(step["every"], queue=step["queue"].encode("utf-8"),
                              name="legacy_tasks." + step["name"])(lambda: None)
        rpqueue.EXECUTE_TASKS = False
        print(json.dumps({"op": op}))
    elif op == "sleep":
        time.sleep(step["seconds"])
        print(json.dumps({"op": op}))
    else:
        raise SystemExit(f"unknown op {op!r}")
