"""Tasks for Huey (RedisHuey, default options)."""
import os

from huey import RedisHuey

import benchlib

huey = RedisHuey("bench", url=os.environ["BENCH_REDIS_URL"])


@huey.task()
def noop():
    benchlib.task_done()


@huey.task()
def stamp():
    benchlib.task_stamp()
