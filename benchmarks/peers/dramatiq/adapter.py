"""Adapter for Dramatiq.  Worker: `dramatiq bench_tasks --processes N --threads 1`."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib


class DramatiqPeer(benchlib.Peer):
    name = "dramatiq (RedisBroker)"
    batch_api = None  # group(...).run() loops over single enqueues
    notes = ["no batch API: group().run() enqueues messages one by one",
             "default middleware, default prefetch"]

    def __init__(self, url, args):
        super().__init__(url, args)
        os.environ["BENCH_REDIS_URL"] = url
        import bench_tasks
        import dramatiq
        self.version = dramatiq.__version__
        self.tasks = bench_tasks

    def enqueue_noop(self):
        self.tasks.noop.send()

    def enqueue_stamp(self):
        self.tasks.stamp.send()

    def worker_commands(self, processes):
        exe = os.path.join(os.path.dirname(sys.executable), "dramatiq")
        return [[exe, "bench_tasks", "--processes", str(processes), "--threads", "1"]]


if __name__ == "__main__":
    sys.exit(benchlib.main(DramatiqPeer))
