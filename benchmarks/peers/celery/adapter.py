"""Adapter for Celery.  Worker: `celery -A bench_tasks worker -P solo -c 1`;
the 2-process drain starts two such workers (distinct node names)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib


class CeleryPeer(benchlib.Peer):
    name = "celery (solo pool)"
    batch_api = None  # group(...).apply_async() publishes one message per task
    notes = ["no batch API: group().apply_async() publishes messages one by one",
             "worker flags: -P solo -c 1 -l WARNING --without-gossip --without-mingle "
             "--without-heartbeat; default prefetch multiplier (4)",
             "2-process drain: two solo workers"]

    def __init__(self, url, args):
        super().__init__(url, args)
        os.environ["BENCH_REDIS_URL"] = url
        import bench_tasks
        import celery
        self.version = celery.__version__
        self.tasks = bench_tasks

    def enqueue_noop(self):
        self.tasks.noop.delay()

    def enqueue_stamp(self):
        self.tasks.stamp.delay()

    def worker_commands(self, processes):
        exe = os.path.join(os.path.dirname(sys.executable), "celery")
        return [[exe, "-A", "bench_tasks", "worker", "-P", "solo", "-c", "1", "-l", "WARNING",
                 "--without-gossip", "--without-mingle", "--without-heartbeat",
                 "-n", "bench%d-%d@localhost" % (i, os.getpid())]
                for i in range(processes)]

    def close(self):
        try:
            self.tasks.app.close()
        except Exception:
            pass


if __name__ == "__main__":
    sys.exit(benchlib.main(CeleryPeer))
