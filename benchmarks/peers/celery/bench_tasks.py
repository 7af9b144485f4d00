"""Tasks for Celery (redis broker, no result backend)."""
import os

import benchlib
from celery import Celery

app = Celery("bench_tasks", broker=os.environ["BENCH_REDIS_URL"])
app.conf.update(
    task_ignore_result=True,                  # no result backend configured anyway
    broker_connection_retry_on_startup=True,  # silences a startup deprecation warning
    worker_hijack_root_logger=True,
)


@app.task
def noop():
    benchlib.task_done()


@app.task
def stamp():
    benchlib.task_stamp()
