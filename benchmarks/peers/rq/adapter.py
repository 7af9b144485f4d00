"""Adapter for RQ.  --variant simple -> rq.SimpleWorker (no fork);
--variant fork -> rq.Worker (the default: forks a work horse per job)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib

QUEUE = "bench"


class RQPeer(benchlib.Peer):
    batch_api = "Queue.enqueue_many(Queue.prepare_data(...) x N)"

    def __init__(self, url, args):
        super().__init__(url, args)
        import bench_tasks
        import redis
        import rq
        from rq import Queue
        self.variant = args.variant or "simple"
        if self.variant not in ("simple", "fork"):
            raise ValueError("variant must be simple or fork")
        self.name = "rq (%s)" % ("SimpleWorker" if self.variant == "simple" else "Worker, fork per job")
        self.version = rq.__version__ if hasattr(rq, "__version__") else rq.VERSION
        self.Queue = Queue
        self.q = Queue(QUEUE, connection=redis.Redis.from_url(url))
        self.tasks = bench_tasks
        self.notes = ["%d separate `rq worker` processes for the 2-process drain" % 2,
                      "worker --logging_level WARNING (default INFO logs every job)"]

    def enqueue_noop(self):
        self.q.enqueue(self.tasks.noop)

    def batch_input(self, n):
        prep = self.Queue.prepare_data
        f = self.tasks.noop
        return [prep(f) for _ in range(n)]

    def enqueue_batch(self, n, prepared=None):
        self.q.enqueue_many(self.batch_input(n) if prepared is None else prepared)

    def enqueue_stamp(self):
        self.q.enqueue(self.tasks.stamp)

    def worker_commands(self, processes):
        rq_bin = os.path.join(os.path.dirname(sys.executable), "rq")
        cls = "rq.SimpleWorker" if self.variant == "simple" else "rq.Worker"
        return [[rq_bin, "worker", "--url", self.url, "--worker-class", cls,
                 "--logging_level", "WARNING", "--name", "bench-%d-%d" % (os.getpid(), i), QUEUE]
                for i in range(processes)]


if __name__ == "__main__":
    sys.exit(benchlib.main(RQPeer))
