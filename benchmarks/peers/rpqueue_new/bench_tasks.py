"""Tasks for our rpqueue (src/rpqueue, installed editable in its venv).

Uses only the seed API that our package keeps from the original:
``rpqueue.set_redis_connection(...)`` and the bare ``@rpqueue.task``
decorator (default queue ``default``).
"""
import os

import benchlib
import redis

import rpqueue

rpqueue.set_redis_connection(redis.Redis.from_url(os.environ["BENCH_REDIS_URL"]))


@rpqueue.task
def noop():
    benchlib.task_done()


@rpqueue.task
def stamp():
    benchlib.task_stamp()
