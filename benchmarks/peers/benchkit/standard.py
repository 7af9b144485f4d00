"""The standard mode: single and batch enqueue, drains with 1 and 2 worker
processes, pickup latency, and single enqueue against the Python ceiling
interleaved (phases 0 to 5 of benchmarks/README.md)."""

from __future__ import annotations

import statistics
import time

import redis

from .peer import log
from .session import Session
from .workers import Workers


class StandardMode(Session):
    def paired_ceiling(self) -> None:
        """Single enqueue calls and the Python round-trip ceiling (EVALSHA of a
        trivial script on one held redis-py connection, one per round trip),
        measured in alternating blocks in this process, so that whatever
        slows round trips (other load; on a small VM, whether this process
        and redis-server share a core) weighs on both alike. Each round: one
        block of each, in alternating order; the ratio is per round."""
        a, p = self.args, self.peer
        block = max(100, a.tasks // 20)
        r = redis.Redis.from_url(a.url)
        sha = r.script_load("return 1")
        conn = r.connection_pool.get_connection()

        def ceiling(k: int) -> None:
            for _ in range(k):
                conn.send_command("EVALSHA", sha, 0)
                conn.read_response()

        try:
            ceiling(200)
            p.enqueue_noops(100)
            enq: list[float] = []
            ceil: list[float] = []
            ratios: list[float] = []
            for i in range(a.paired_rounds):
                order = ((ceil, ceiling), (enq, p.enqueue_noops))
                for out, fn in (order if i % 2 == 0 else order[::-1]):
                    t0 = time.perf_counter()
                    fn(block)
                    out.append(block / (time.perf_counter() - t0))
                ratios.append(enq[-1] / ceil[-1])
        finally:
            r.connection_pool.release(conn)
            r.close()
        out = {"rounds": a.paired_rounds, "block": block,
               "enqueue_rps": statistics.median(enq), "evalsha_rps": statistics.median(ceil),
               "ratio": statistics.median(ratios), "ratios": [round(x, 4) for x in ratios],
               "enqueue_rps_all": [round(x) for x in enq],
               "evalsha_rps_all": [round(x) for x in ceil]}
        self.result["paired_ceiling"] = out
        log("paired ceiling: enqueue %.0f/s, EVALSHA %.0f/s, ratio %.2f (%.2f-%.2f)" % (
            out["enqueue_rps"], out["evalsha_rps"], out["ratio"], min(ratios), max(ratios)))

    def run(self) -> None:
        a = self.args
        p = self.peer
        res = self.result
        n = a.tasks
        self.flush()
        p.setup()

        # 1. single enqueue (after a small warm-up that is thrown away)
        def enqueue_single() -> None:
            p.enqueue_noops(100)
            self.flush()
            rate, dt = self.timed_enqueue(p.enqueue_noops, n)
            res["enqueue_single"] = rate
            log("enqueue single: %.0f/s (%.2fs)" % (rate, dt))

        # 0. single enqueue against the Python round-trip ceiling, interleaved
        # (its tasks are flushed: phase 1 fills the queue that phase 2 drains)
        if a.paired_rounds > 0:
            self._phase("paired_ceiling", self.paired_ceiling)
            self.flush()

        if not self._phase("enqueue_single", enqueue_single):
            raise RuntimeError("single enqueue failed: " + res["errors"][-1]["error"])

        # 2. drain with 1 worker process, then reuse the idle worker for latency
        state: dict[str, Workers] = {}

        def drain_1() -> None:
            rate, info, state["w"] = self.drain(1, "drain1")
            res["drain_1"] = rate
            res["drain_1_info"] = info
            log("drain 1 proc: %.0f/s %s" % (rate or 0, info))

        def latency() -> None:
            w = state.get("w")
            if w is None or not res.get("drain_1_info", {}).get("complete"):
                # no worker, or a backlog is left: a fresh idle worker
                if w is not None:
                    w.stop()
                self.flush()
                w = state["w"] = Workers(p, 1, n, self.workdir, "latency", counter=self.counter)
            res["latency"] = self.latency(w)
            log("latency: %s" % res["latency"])

        try:
            self._phase("drain_1", drain_1)
            if a.latency_samples > 0:
                self._phase("latency", latency)
        finally:
            if state.get("w") is not None:
                state["w"].stop()
        self.flush()

        # 3. batch enqueue (or single calls to refill), then drain with 2
        def batch() -> None:
            # only the batch call is timed: its argument list is built first
            prepared = p.batch_input(n)
            rate, dt = self.timed_enqueue(lambda k: p.enqueue_batch(k, prepared), n)
            res["enqueue_batch"] = rate
            log("enqueue batch: %.0f/s (%.2fs)" % (rate, dt))

        def refill() -> None:
            rate, _ = self.timed_enqueue(p.enqueue_noops, n)
            res["enqueue_single_refill"] = rate

        res["enqueue_batch"] = None
        if p.batch_api:
            filled = self._phase("enqueue_batch", batch)
            if not filled:
                self.flush()
                filled = self._phase("refill", refill)
        else:
            filled = self._phase("refill", refill)

        state = {}

        def drain_2() -> None:
            rate, info, state["w"] = self.drain(2, "drain2")
            res["drain_2"] = rate
            res["drain_2_info"] = info
            log("drain 2 procs: %.0f/s %s" % (rate or 0, info))

        if filled:
            try:
                self._phase("drain_2", drain_2)
            finally:
                if state.get("w") is not None:
                    state["w"].stop()
        self.flush()
