"""Adapter for our rpqueue (this repository, installed with `pip install -e`).

Worker: `python -m rpqueue.run --module=bench_tasks --url=URL --threads=1
--processes=N default` (rpqueue's own multi-process mode for the 2-process
drain).  Batch enqueue: one `Task.execute_many(list of N (args, kwargs))` call
when the attribute exists, otherwise n/a; the list is built before the timer
starts.  Pickup latency: `stamp.execute()` on the idle worker left by the
1-process drain.  Only the public API is used (no optional keywords), so the
adapter does not depend on how the package stores tasks.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib

QUEUE = "default"


class RpqueueNew(benchlib.Peer):
    name = "rpqueue (this repo)"
    notes = []

    def __init__(self, url, args):
        super().__init__(url, args)
        os.environ["BENCH_REDIS_URL"] = url
        import bench_tasks

        import rpqueue
        self.tasks = bench_tasks
        self.version = (getattr(rpqueue, "__version__", None) or getattr(rpqueue, "VERSION", None)
                        or _dist_version())
        has_many = hasattr(bench_tasks.noop, "execute_many")
        self.batch_api = "Task.execute_many([(args, kwargs)] x N)" if has_many else None
        if not has_many:
            self.notes = ["Task.execute_many not found: batch n/a"]

    def enqueue_noop(self):
        self.tasks.noop.execute()

    def batch_input(self, n):
        return [((), {}) for _ in range(n)]

    def enqueue_batch(self, n, prepared=None):
        # public API only: a list of (args, kwargs), no optional keywords
        self.tasks.noop.execute_many(self.batch_input(n) if prepared is None else prepared)

    # backlog fill: execute_many when it exists (benchlib calls this in
    # chunks of at most 10,000), else single calls
    fill_api = None

    def fill(self, n):
        if self.batch_api:
            self.enqueue_batch(n)
        else:
            self.enqueue_noops(n)

    # only the worker thread's stacks pass through Worker.run
    profile_marker = ("rpqueue/worker/loop.py", "run")

    def enqueue_stamp(self):
        self.tasks.stamp.execute()

    def worker_commands(self, processes):
        return [[sys.executable, "-m", "rpqueue.run", "--module=bench_tasks", "--url=" + self.url,
                 "--threads=1", "--processes=%d" % processes, QUEUE]]


def _dist_version():
    try:
        from importlib.metadata import version
        return version("rpqueue")
    except Exception:
        return "?"


if __name__ == "__main__":
    sys.exit(benchlib.main(RpqueueNew))
