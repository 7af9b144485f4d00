"""Adapter for Huey (RedisHuey).  Worker: `huey_consumer bench_tasks.huey -w N`
(1 thread for the 1-process runs, `-k process -w 2` for the 2-process run)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib


class HueyPeer(benchlib.Peer):
    name = "huey (RedisHuey)"
    batch_api = None  # task.map() exists but loops over single enqueues
    notes = ["no batch API: Task.map() is a loop of single enqueues",
             "consumer -q (quiet; default logs two lines per task)",
             "2-process drain: huey_consumer -k process -w 2"]

    def __init__(self, url, args):
        super().__init__(url, args)
        os.environ["BENCH_REDIS_URL"] = url
        import bench_tasks
        import huey
        self.version = huey.__version__
        self.tasks = bench_tasks

    def enqueue_noop(self):
        self.tasks.noop()

    def enqueue_stamp(self):
        self.tasks.stamp()

    def worker_commands(self, processes):
        exe = os.path.join(os.path.dirname(sys.executable), "huey_consumer")
        if processes == 1:
            return [[exe, "bench_tasks.huey", "-q", "-k", "thread", "-w", "1"]]
        return [[exe, "bench_tasks.huey", "-q", "-k", "process", "-w", str(processes)]]


if __name__ == "__main__":
    sys.exit(benchlib.main(HueyPeer))
