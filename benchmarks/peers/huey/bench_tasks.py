"""Tasks for Huey (RedisHuey, default options)."""
import os

import benchlib
from huey import RedisHuey

huey = RedisHuey("bench", url=os.environ["BENCH_REDIS_URL"])


@huey.task()
def noop():
    benchlib.task_done()


@huey.task()
def stamp():
    benchlib.task_stamp()
