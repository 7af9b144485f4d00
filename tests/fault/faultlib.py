"""Helpers for the fault-injection suite: the ledger, worker processes, a producer.

The ledger lives on a redis-server of its own that no fault touches (see
taskmods/fault_tasks.py for what the tasks write). Workers are started the
way users start them, ``python -m rpqueue.run --module=fault_tasks``, one
process each (``--processes=1``): "a worker" here is one OS process, and the
tests play the process manager that restarts a killed one.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import fault_tasks
import redis
from redis.exceptions import ConnectionError, TimeoutError
from support.paths import FAULT_TASKMODS as TASKMODS
from support.worker import WorkerProcess, rpqueue_argv
from support.worker import wait_until as _wait_until

import rpqueue

T = TypeVar("T")

# Figures measured by the tests, printed at the end of the run (conftest).
FIGURES: dict[str, dict[str, Any]] = {}


def report(test: str, **figures: Any) -> None:
    FIGURES.setdefault(test, {}).update(figures)


def wait_until(predicate: Callable[[], T], timeout: float, interval: float = 0.05,
               message: str | Callable[[], str] = "condition") -> T:
    """support.worker.wait_until, but the timeout is always given (fault tests
    wait for minutes, not the usual seconds) and polling is gentler."""
    return _wait_until(predicate, timeout, interval, message)


# -- the ledger -----------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    kind: str  # "S" (a run started) or "E" (a run ended)
    id: str
    pid: int
    t: float  # real unix time, from the ledger server's clock


@dataclass
class Tally:
    """What the ledger says about a set of runs."""

    events: list[Event]
    starts: Counter[str] = field(default_factory=Counter)
    ends: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        for e in self.events:
            (self.starts if e.kind == "S" else self.ends)[e.id] += 1

    @property
    def executions(self) -> int:
        return sum(self.starts.values())

    @property
    def duplicates(self) -> int:
        """Runs beyond the first of each task."""
        return sum(n - 1 for n in self.starts.values())

    def executed(self) -> set[str]:
        return set(self.starts)

    def completed(self) -> set[str]:
        return set(self.ends)

    def first_start(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for e in self.events:
            if e.kind == "S" and e.id not in out:
                out[e.id] = e.t
        return out


class Ledger:
    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(url, socket_timeout=30)

    def raw_events(self) -> list[Event]:
        out = []
        for raw in self.client.lrange(fault_tasks.EVENTS, 0, -1):
            kind, taskid, pid, t = raw.decode("utf-8", "replace").split(" ")
            out.append(Event(kind, taskid, int(pid), float(t)))
        return out

    def tally(self) -> Tally:
        return Tally(self.raw_events())

    def count(self) -> int:
        return int(self.client.llen(fault_tasks.EVENTS))

    def last_starter(self, ids: Sequence[str]) -> list[int | None]:
        if not ids:
            return []
        return [None if p is None else int(p) for p in self.client.hmget(fault_tasks.LAST, ids)]

    def time(self) -> float:
        secs, micros = self.client.time()
        return int(secs) + int(micros) / 1e6

    def close(self) -> None:
        self.client.close()


# -- worker processes -----------------------------------------------------------


# A worker thread that dies of an exception it did not expect prints this
# (threading.excepthook): the process lives on with one thread fewer.
THREAD_DEATH = "Exception in thread"


class WorkerPool:
    """N worker processes; the test kills and replaces them like a process manager."""

    def __init__(self, url: str, ledger_url: str, logdir: Path, size: int = 4, threads: int = 4,
                 work: float = 0.005, prefix: Sequence[str] = (), queues: Sequence[str] = (),
                 module: str = "fault_tasks", env: dict[str, str] | None = None) -> None:
        self.url = url
        self.module = module
        self.logdir = logdir
        self.threads = threads
        self.prefix = list(prefix)
        self.queues = list(queues)
        self.env = {"FAULT_LEDGER_URL": ledger_url, "FAULT_WORK_SECONDS": str(work),
                    **(env or {})}
        self.all: list[WorkerProcess] = []
        self.slots: list[WorkerProcess] = [self.spawn() for _ in range(size)]

    def spawn(self, prefix: Sequence[str] | None = None,
              queues: Sequence[str] | None = None) -> WorkerProcess:
        argv = [*(self.prefix if prefix is None else prefix),
                *rpqueue_argv(self.module, *(self.queues if queues is None else queues),
                              url=self.url, loglevel="WARNING",
                              args=[f"--threads={self.threads}", "--processes=1"])]
        # One log file per worker: what it printed and logged, in order.
        worker = WorkerProcess(argv, self.logdir, f"worker{len(self.all)}", self.env,
                               cwd=TASKMODS, merge_output=True, grace=5.0)
        self.all.append(worker)
        return worker

    def kill_and_replace(self, rng: random.Random) -> WorkerProcess:
        """SIGKILL one worker at random, start another in its place; returns the killed one."""
        i = rng.randrange(len(self.slots))
        victim = self.slots[i]
        victim.kill()
        self.slots[i] = self.spawn()
        return victim

    def unexpected_exits(self) -> list[str]:
        """Workers that exited although nobody killed them, and dead worker threads."""
        out = []
        for w in self.all:
            if not w.killed and not w.alive():
                out.append(f"{w.name} (pid {w.pid}) exited with {w.proc.returncode}:\n{w.log()[-2000:]}")
            elif THREAD_DEATH in w.log():
                out.append(f"{w.name} (pid {w.pid}) lost a thread:\n{w.log()[-2000:]}")
        return out

    def stop_all(self) -> None:
        for w in self.all:
            w.stop()


# -- producing ------------------------------------------------------------------


class Producer(threading.Thread):
    """Queues ``count`` calls of ``task`` at ``rate`` per second, retrying through faults.

    A call counts as acknowledged when ``execute()`` returned. One that
    raised a connection error is sent again with the same task id until it
    is acknowledged, so a retry never makes a second task.
    """

    def __init__(self, task: Any, count: int, rate: float | None = None,
                 first: int = 0, prefix: str = "t") -> None:
        super().__init__(name="fault-producer", daemon=True)
        self.task = task
        self.count = count
        self.rate = rate
        self.first = first
        self.prefix = prefix
        self.acked: list[str] = []
        self.errors: Counter[str] = Counter()
        self.refused_running: list[str] = []
        self.failure: BaseException | None = None
        self.finished_at: float | None = None

    def run(self) -> None:
        try:
            started = time.monotonic()
            for i in range(self.count):
                n = self.first + i
                if self.rate:
                    ahead = started + i / self.rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
                self._send(n, f"{self.prefix}{n}")
            self.finished_at = time.monotonic()
        except BaseException as exc:  # reported by the test
            self.failure = exc

    def _send(self, n: int, taskid: str) -> None:
        while True:
            try:
                self.task.execute(n, taskid=taskid)
            except (ConnectionError, TimeoutError) as exc:
                self.errors[type(exc).__name__] += 1
                time.sleep(0.05)
                continue
            except ValueError as exc:
                if "is running" in str(exc):
                    # An earlier attempt of this call did queue it (its reply
                    # was lost), and a worker has taken it since.
                    self.refused_running.append(taskid)
                    return
                raise
            self.acked.append(taskid)
            return

    def join_checked(self, timeout: float) -> None:
        self.join(timeout)
        if self.is_alive():
            raise AssertionError(f"producer still running after {timeout}s "
                                 f"({len(self.acked)} of {self.count} acknowledged)")
        if self.failure is not None:
            raise AssertionError(f"producer failed: {self.failure!r}") from self.failure


# -- looking at the queue ---------------------------------------------------------


def use(url: str) -> rpqueue.RPQueue:
    """Point this process's default app (the producer) at ``url``."""
    rpqueue.set_redis_url(url)
    # Also forgets the queues this process registered on another server.
    rpqueue.set_key_prefix("rpqueue:")
    return rpqueue.default_app()


def queue_state(client: Any, queue: str = "default") -> dict[str, Any]:
    app = rpqueue.default_app()
    k = app.keys.queue(queue)
    pipe = client.pipeline(transaction=False)
    pipe.llen(k.ready)
    pipe.zcard(k.delayed)
    pipe.zcard(k.leases)
    pipe.hlen(k.msg)
    pipe.zcard(k.dead)
    pipe.hgetall(k.stats)
    ready, delayed, leases, msg, dead, stats = pipe.execute()
    return {"ready": int(ready), "delayed": int(delayed), "leases": int(leases), "msg": int(msg),
            "dead": int(dead),
            "stats": {a.decode() if isinstance(a, bytes) else a: int(b) for a, b in stats.items()}}


def drained(state: dict[str, Any]) -> bool:
    return not (state["ready"] or state["delayed"] or state["leases"] or state["msg"])


def lease_ids(client: Any, queue: str = "default") -> list[str]:
    k = rpqueue.default_app().keys.queue(queue)
    return [i.decode("utf-8", "replace") for i in client.zrange(k.leases, 0, -1)]


def missing(expected: Iterable[str], got: set[str], show: int = 10) -> str:
    lost = [i for i in expected if i not in got]
    return f"{len(lost)} missing, e.g. {lost[:show]}"
