"""Paths, the systems measured, the metrics reported, and the log line."""

from __future__ import annotations

import os
import time
from typing import Any

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # benchmarks/
REPO = os.path.dirname(BENCH)
PEERS_DIR = os.path.join(BENCH, "peers")
VENVS = os.path.join(BENCH, ".venvs")
WORK = os.path.join(BENCH, ".work")
RESULTS = os.path.join(BENCH, "results")

# the system every ratio is taken against
BASELINE = "rpqueue_orig"

# id -> how to run it.  "dir" is the adapter directory under peers/, "venv"
# the venv under .venvs/ (variants of one library share a venv).
PEERS: dict[str, dict[str, Any]] = {
    "rpqueue_orig": dict(dir="rpqueue_orig", venv="rpqueue_orig",
                         label="rpqueue 0.33.7 (original, PyPI)"),
    "rpqueue_new": dict(dir="rpqueue_new", venv="rpqueue_new", editable=True,
                        label="rpqueue (this repo)"),
    "rq_simple": dict(dir="rq", venv="rq", variant="simple", label="RQ SimpleWorker"),
    "rq_fork": dict(dir="rq", venv="rq", variant="fork", label="RQ Worker (fork per job)"),
    "huey": dict(dir="huey", venv="huey", label="Huey (RedisHuey)"),
    "dramatiq": dict(dir="dramatiq", venv="dramatiq", label="Dramatiq"),
    "celery": dict(dir="celery", venv="celery", label="Celery (solo pool)"),
    "arq": dict(dir="arq", venv="arq", label="arq (max_jobs=1)"),
    "arq_fastpoll": dict(dir="arq", venv="arq", variant="fastpoll",
                         label="arq (max_jobs=1, poll_delay=0.01)"),
}

# run when --peers is not given; arq_fastpoll is an extra, opt-in variant
DEFAULT_PEERS = [p for p in PEERS if p != "arq_fastpoll"]

# the venv whose redis-py (with hiredis) measures the Python ceiling, and
# the system --profile profiles (which gets py-spy in its venv)
CEILING_PEER = "rpqueue_new"
PROFILE_PEER = "rpqueue_new"

METRICS = [
    # key, column title, higher is better
    ("enqueue_single", "enqueue, single calls (tasks/s)", True),
    ("enqueue_batch", "enqueue, batch API (tasks/s)", True),
    ("drain_1", "drain, 1 process (tasks/s)", True),
    ("drain_2", "drain, 2 processes (tasks/s)", True),
    ("latency_p50_ms", "pickup p50 (ms)", False),
    ("latency_p99_ms", "pickup p99 (ms)", False),
]

# which adapter phase produces each metric (for "failed" cells)
METRIC_PHASE = {"enqueue_single": ("enqueue_single",), "enqueue_batch": ("enqueue_batch",),
                "drain_1": ("drain_1",), "drain_2": ("drain_2", "refill"),
                "latency_p50_ms": ("latency",), "latency_p99_ms": ("latency",)}

# how the drain task counts its executions (--drain-counter); a results file
# from before the option was measured with "redis"
COUNTER_TEXT = {
    "local": ("a true no-op: the task body sends no Redis command; it counts itself by "
              "appending one byte to a tmpfs file (two system calls, about 1 µs)"),
    "redis": "one `INCR` round trip to Redis per task (`--drain-counter redis`)",
}
COUNTER_SHORT = {"local": "no Redis command, a local counter", "redis": "one `INCR`"}


def drain_counter(report: dict[str, Any]) -> str:
    return (report.get("config") or {}).get("drain_counter") or "redis"


def log(*args: Any) -> None:
    print("[run %s]" % time.strftime("%H:%M:%S"), *args, flush=True)


def child_env() -> dict[str, str]:
    """The environment of a process run with a venv's python: without our
    PYTHONPATH, so that each venv sees only its own packages."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env
