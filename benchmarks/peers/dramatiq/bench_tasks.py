"""Actors for Dramatiq (RedisBroker, default middleware)."""
import os

import benchlib
import dramatiq
from dramatiq.brokers.redis import RedisBroker

dramatiq.set_broker(RedisBroker(url=os.environ["BENCH_REDIS_URL"]))


@dramatiq.actor(queue_name="bench")
def noop():
    benchlib.task_done()


@dramatiq.actor(queue_name="bench")
def stamp():
    benchlib.task_stamp()
