"""Worker launcher for rpqueue 0.33.7.

Equivalent of ``python -m rpqueue.run --module=bench_tasks --threads=1
--processes=N --loglevel=WARNING default``, except that the queue name is
passed as bytes: 0.33.7's ``rpqueue.run`` hands the command-line queue names
(str) straight to code that does ``b'nqueue:' + name`` and dies with
``TypeError: can't concat str to bytes`` on Python 3.
"""
import argparse

import rpqueue

ap = argparse.ArgumentParser()
ap.add_argument("--processes", type=int, default=1)
ap.add_argument("queues", nargs="*", default=["default"])
a = ap.parse_args()

rpqueue.LOG_LEVEL = "WARNING"
rpqueue.execute_tasks([q.encode() for q in a.queues], threads_per_process=1,
                      processes=a.processes, wait_per_thread=1, module="bench_tasks")
