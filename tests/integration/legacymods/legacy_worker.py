"""A worker of the real rpqueue 0.33.7 (run by its venv's python) serving one queue.

``python legacy_worker.py PORT PREFIX QUEUE``: runs ``legacy_tasks.add``
(recording each run on ``test:legacy:ran``) in one thread until SIGTERM,
then finishes the task in hand and exits.
"""

import json
import sys
import time

import rpqueue

assert rpqueue.VERSION == "0.33.7", rpqueue.VERSION
port, prefix, queue = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode("utf-8")
rpqueue.set_redis_connection_settings("127.0.0.1", port, 0)
if prefix:
    rpqueue.set_key_prefix(prefix.encode("latin-1"))


@rpqueue.task(queue=queue, name="legacy_tasks.add")
def add(*args, **kwargs):
    time.sleep(0.005)
    record = {"task": "add", "args": list(args), "kwargs": kwargs, "by": "legacy"}
    rpqueue.get_connection().rpush("test:legacy:ran", json.dumps(record))


print("ready", flush=True)
# One thread, in this process: on SIGTERM it finishes its task, then returns.
rpqueue.execute_task_threads([queue], threads=1)
