"""Tasks for the pause tests: each run is one JSON object on ``test:pause:ran``."""

from __future__ import annotations

import json
import time

import rpqueue

RAN = "test:pause:ran"


def _note(queue: str, n: int) -> None:
    record = {"queue": queue, "n": n, "at": time.time()}
    rpqueue.default_app().client.rpush(RAN, json.dumps(record))


@rpqueue.task(queue="held", name="pause_tasks.held")
def held(n: int) -> None:
    _note("held", n)


@rpqueue.task(queue="free", name="pause_tasks.free")
def free(n: int) -> None:
    _note("free", n)
