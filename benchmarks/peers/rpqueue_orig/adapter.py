"""Adapter for the original rpqueue 0.33.7 from PyPI (own venv)."""
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

import benchlib  # noqa: E402


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
            import rpqueue
            import bench_tasks
        self.rpqueue = rpqueue
        self.tasks = bench_tasks
        self.version = rpqueue.VERSION

    def enqueue_noop(self):
        self.tasks.noop.execute()

    def enqueue_stamp(self):
        self.tasks.stamp.execute()

    def worker_commands(self, processes):
        here = os.path.dirname(os.path.abspath(__file__))
        return [[sys.executable, "-W", "ignore::DeprecationWarning",
                 os.path.join(here, "worker.py"), "--processes", str(processes), "default"]]


if __name__ == "__main__":
    sys.exit(benchlib.main(RpqueueOrig))
