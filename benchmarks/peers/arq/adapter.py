"""Adapter for arq.  Worker: `arq bench_tasks.WorkerSettings` (max_jobs=1,
otherwise defaults, notably poll_delay=0.5s); two such workers for the
2-process drain."""
import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib


class ArqPeer(benchlib.Peer):
    name = "arq"
    batch_api = None
    notes = ["no batch API",
             "worker defaults except max_jobs=1: the queue is polled every 0.5 s "
             "(poll_delay) and with max_jobs=1 arq starts at most one job per poll, so one "
             "worker runs at most 1/poll_delay jobs/s",
             "enqueue calls are awaited one at a time inside one event loop",
             "2-process drain: two `arq` workers"]

    def __init__(self, url, args):
        super().__init__(url, args)
        os.environ["BENCH_REDIS_URL"] = url
        import arq
        from arq.connections import RedisSettings, create_pool
        self.poll_delay = 0.01 if args.variant == "fastpoll" else 0.5
        if args.variant == "fastpoll":
            self.name = "arq (poll_delay=0.01)"
            self.notes = [x.replace("every 0.5 s (poll_delay)", "every 0.01 s (poll_delay=0.01, "
                                    "arq's default is 0.5)") for x in self.notes]
        self.version = getattr(arq, "VERSION", None) or arq.version.VERSION
        self.loop = asyncio.new_event_loop()
        self.pool = self.loop.run_until_complete(create_pool(RedisSettings.from_dsn(url)))

    async def _enqueue_n(self, name, n):
        enq = self.pool.enqueue_job
        for _ in range(n):
            await enq(name)

    def enqueue_noop(self):
        self.loop.run_until_complete(self.pool.enqueue_job("noop"))

    def enqueue_noops(self, n):
        self.loop.run_until_complete(self._enqueue_n("noop", n))

    def enqueue_stamp(self):
        self.loop.run_until_complete(self.pool.enqueue_job("stamp"))

    def worker_env(self):
        return {"BENCH_ARQ_POLL_DELAY": str(self.poll_delay)}

    def worker_commands(self, processes):
        exe = os.path.join(os.path.dirname(sys.executable), "arq")
        return [[exe, "bench_tasks.WorkerSettings", "--custom-log-dict", "bench_tasks.LOG_CONFIG"]
                for _ in range(processes)]

    def close(self):
        try:
            self.loop.run_until_complete(self.pool.aclose())
        except Exception:
            pass
        self.loop.close()


if __name__ == "__main__":
    sys.exit(benchlib.main(ArqPeer))
