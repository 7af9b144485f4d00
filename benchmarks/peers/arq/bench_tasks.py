"""Jobs and WorkerSettings for arq (asyncio).

The job bodies call the same synchronous helper as every other peer; with
max_jobs=1 nothing else runs concurrently in the worker, so blocking the
event loop for that one round trip costs arq exactly what it costs others.
"""
import os

import benchlib
from arq.connections import RedisSettings


async def noop(ctx):
    benchlib.task_done()


async def stamp(ctx):
    benchlib.task_stamp()


class WorkerSettings:
    functions = [noop, stamp]
    redis_settings = RedisSettings.from_dsn(os.environ["BENCH_REDIS_URL"])
    max_jobs = 1
    # arq's default is 0.5 s; the "arq_fastpoll" peer variant sets 0.01 s
    poll_delay = float(os.environ.get("BENCH_ARQ_POLL_DELAY", "0.5"))


# passed to `arq --custom-log-dict`: WARNING instead of arq's default INFO,
# which logs two lines per job
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"h": {"level": "WARNING", "class": "logging.StreamHandler"}},
    "loggers": {"arq": {"handlers": ["h"], "level": "WARNING"}},
}
