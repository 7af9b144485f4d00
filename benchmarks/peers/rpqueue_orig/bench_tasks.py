"""Tasks for the original rpqueue 0.33.7 (PyPI).

rpqueue 0.33.7 wants bytes queue names on Python 3 (``@task`` asserts
``isinstance(queue, bytes)``); the bare decorator uses its default queue
``b'default'``.
"""
import os
from urllib.parse import urlparse

import benchlib

import rpqueue

_u = urlparse(os.environ["BENCH_REDIS_URL"])
rpqueue.set_redis_connection_settings(_u.hostname, _u.port or 6379, int((_u.path or "/0").lstrip("/") or 0))


@rpqueue.task
def noop():
    benchlib.task_done()


@rpqueue.task
def stamp():
    benchlib.task_stamp()
