"""Adapter for the original rpqueue 0.33.7 from PyPI (own venv)."""
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

import benchlib


class RpqueueOrig(benchlib.Peer):
    name = "rpqueue"
    batch_api = None  # 0.33.7 has no task batch enqueue (Data.put_data is for data queues)
    notes = [
        "worker launched through worker.py with bytes queue names "
        "(rpqueue.run passes str queue names and crashes on Python 3)",
        "worker log level WARNING (rpqueue.run defaults to DEBUG: two log lines per task)",
    ]

    def __init__(self, url, args):
        super().__init__(url, args)
        os.environ["BENCH_REDIS_URL"] = url
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 'imp' module
            import bench_tasks

            import rpqueue
        self.rpqueue = rpqueue
        self.tasks = bench_tasks
        self.version = rpqueue.VERSION

    def enqueue_noop(self):
        self.tasks.noop.execute()

    def enqueue_stamp(self):
        self.tasks.stamp.execute()

    # Backlog fill: 0.33.7 has no batch API, so the fill runs its own
    # single-call code, rpqueue._enqueue_call (what Task.execute calls), on a
    # stand-in connection whose per-call MULTI/EXEC pipeline writes into one
    # shared pipeline, sent every FILL_PIPELINE calls. Redis ends up with
    # exactly the keys and values that single execute() calls leave.
    fill_api = "single execute() calls (rpqueue._enqueue_call), pipelined 1,000 per round trip"
    FILL_PIPELINE = 1000

    def fill(self, n):
        conn = self.rpqueue.get_connection()
        name = self.tasks.noop.name
        queue = self.tasks.noop.queue
        done = 0
        while done < n:
            k = min(self.FILL_PIPELINE, n - done)
            outer = conn.pipeline(transaction=False)
            shim = _PipelineShim(outer)
            for _ in range(k):
                self.rpqueue._enqueue_call(shim, queue, name, (), {}, 0)
            outer.execute()
            done += k

    def worker_commands(self, processes):
        here = os.path.dirname(os.path.abspath(__file__))
        return [[sys.executable, "-W", "ignore::DeprecationWarning",
                 os.path.join(here, "worker.py"), "--processes", str(processes), "default"]]


class _PipelineShim:
    """Stands in for the redis connection given to rpqueue._enqueue_call.
    Its pipeline(transaction) records the call's commands; their execute()
    appends them to the shared outer pipeline inside MULTI/EXEC (one block
    per call, as execute() sends them), and the caller sends the outer
    pipeline once per batch."""

    def __init__(self, outer):
        self.outer = outer

    def pipeline(self, transaction=True):
        return _Inner(self.outer, transaction)


class _Inner:
    def __init__(self, outer, transaction):
        self.outer = outer
        self.transaction = transaction
        self.cmds = []

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.cmds.append((name, args, kwargs))
            return self
        return call

    def execute(self):
        if self.transaction:
            self.outer.execute_command("MULTI")
        for name, args, kwargs in self.cmds:
            getattr(self.outer, name)(*args, **kwargs)
        if self.transaction:
            self.outer.execute_command("EXEC")
        self.cmds = []
        return []


if __name__ == "__main__":
    sys.exit(benchlib.main(RpqueueOrig))
