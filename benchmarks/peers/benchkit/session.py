"""One adapter run: its connection, counter, result, and the two
measurements every mode uses: a drain by worker processes, and pickup
latency on an idle worker."""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import redis

from .counters import LocalCounter, RedisCounter
from .keys import K_FINISHED, K_LAT
from .peer import Peer, log
from .workers import Workers


def _percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of an already sorted list."""
    if not sorted_values:
        return None
    k = math.ceil(q / 100.0 * len(sorted_values)) - 1
    return sorted_values[max(0, min(len(sorted_values) - 1, k))]




class Session:
    """State of one adapter run; the modes are subclasses (standard, backlog, profile_mode)."""

    def __init__(self, peer: Peer, args: argparse.Namespace) -> None:
        self.peer = peer
        self.args = args
        self.r = redis.Redis.from_url(args.url)
        self.result: dict[str, Any] = {
            "peer": args.peer_id or peer.name,
            "system": peer.name,
            "version": peer.version,
            "tasks": args.tasks,
            "batch_api": peer.batch_api,
            "notes": list(peer.notes),
            "errors": [],
        }
        self.workdir = args.workdir
        os.makedirs(self.workdir, exist_ok=True)
        self.counter: LocalCounter | RedisCounter = (
            LocalCounter(self.r, self.workdir) if args.drain_counter == "local"
            else RedisCounter(self.r))
        self.result["drain_counter"] = {"name": self.counter.name,
                                        "description": self.counter.description}

    # --- helpers -----------------------------------------------------------
    def flush(self) -> None:
        self.r.flushdb()

    def timed_enqueue(self, fn: Callable[[int], Any], n: int) -> tuple[float, float]:
        t0 = time.perf_counter()
        fn(n)
        dt = time.perf_counter() - t0
        return n / dt, dt

    def drain(self, processes: int, tag: str, n: int | None = None,
              more_queued: bool = False) -> tuple[float | None, dict[str, Any], Workers]:
        """Start `processes` workers on the pre-filled queue and wait until
        n (default --tasks) tasks ran (or the phase timeout).  Returns (rate,
        info, workers).  The workers are left running so the caller may
        reuse them.  more_queued: the queue holds more than n tasks (backlog
        phase), so executions past n are expected, not duplicates."""
        n = self.args.tasks if n is None else n
        c = self.counter
        c.reset()
        w = Workers(self.peer, processes, n, self.workdir, tag, counter=c)
        deadline = w.started + self.args.phase_timeout
        finished = False
        try:
            while time.time() < deadline:
                got = self.r.blpop([K_FINISHED], timeout=1)
                if got:
                    finished = True
                    break
                if not w.alive():
                    raise RuntimeError("worker exited early\n" + w.tail())
        except BaseException:
            w.stop()
            raise
        if not finished and c.last() is not None:
            finished = True  # the last task ended between our last BLPOP and the deadline
        now = time.time()
        done_at_cut = c.done()
        if not more_queued:
            time.sleep(0.3)  # let duplicates (if any) show up before we count
        done = c.done()
        first = c.first()
        info = {"processes": processes, "complete": finished, "executed": done,
                "startup_s": None}
        if first is None:
            w.stop()
            raise RuntimeError("no task ran within %ss\n%s" % (self.args.phase_timeout, w.tail()))
        info["startup_s"] = round(first - w.started, 3)
        if finished:
            last = c.last()
            elapsed = last - first
            rate = n / elapsed
        else:
            # partial: rate over what ran so far (steady state estimate)
            elapsed = now - first
            rate = done_at_cut / elapsed if elapsed > 0 else None
            done = done_at_cut
        info["elapsed_s"] = round(elapsed, 4)
        if more_queued:
            info["executed"] = n if finished else done
        elif finished and done != n:
            info["duplicates"] = done - n
        return rate, info, w

    def latency(self, w: Workers) -> dict[str, Any]:
        """Pickup latency with an idle worker: one task at a time."""
        samples: list[float] = []
        self.r.delete(K_LAT)
        deadline = time.time() + self.args.latency_timeout
        warmup = 5
        i = 0
        rnd = random.Random(12345)
        while len(samples) < self.args.latency_samples and time.time() < deadline:
            # small random gap so the enqueue does not lock onto a poller's phase
            time.sleep(rnd.uniform(0.002, 0.010))
            t0 = time.time()
            self.peer.enqueue_stamp()
            got = None
            wait_until = time.time() + 10
            while got is None and time.time() < wait_until:
                got = self.r.blpop([K_LAT], timeout=1)
                if got is None and not w.alive():
                    raise RuntimeError("worker died during latency phase\n" + w.tail())
            if got is None:
                raise RuntimeError("stamp task did not run within 10s\n" + w.tail())
            started = float(got[1])
            i += 1
            if i > warmup:
                samples.append(started - t0)
        samples.sort()
        return {
            "samples": len(samples),
            "p50_ms": round(_percentile(samples, 50) * 1000, 3) if samples else None,
            "p99_ms": round(_percentile(samples, 99) * 1000, 3) if samples else None,
            "mean_ms": round(statistics.fmean(samples) * 1000, 3) if samples else None,
            "max_ms": round(samples[-1] * 1000, 3) if samples else None,
            "complete": len(samples) >= self.args.latency_samples,
        }

    # --- phases ------------------------------------------------------------
    def _phase(self, name: str, fn: Callable[[], Any], flush: bool = True) -> bool:
        """Run one phase; a failing phase is recorded and the next one runs."""
        try:
            fn()
            return True
        except Exception as exc:
            msg = "%s: %s" % (type(exc).__name__, exc)
            log("phase %s failed: %s" % (name, msg))
            self.result["errors"].append({"phase": name, "error": msg[:2000]})
            if flush:
                try:
                    self.flush()
                except Exception:
                    pass
            return False
