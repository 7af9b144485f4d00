"""--mode backlog: Redis memory per queued task, and enqueue and drain
rates with a large backlog queued (benchmarks/run.py --backlog)."""

from __future__ import annotations

import statistics
import time
from typing import Any

from .keys import FILL_CHUNK
from .peer import log
from .session import Session


class BacklogMode(Session):
    def used_memory(self) -> tuple[int, dict[str, Any]]:
        """used_memory less the memory of normal clients (their query and
        output buffers hold pipelines in flight, not queued tasks)."""
        info = self.r.info("memory")
        return int(info["used_memory"]) - int(info.get("mem_clients_normal", 0)), {
            k: info.get(k) for k in ("used_memory", "mem_clients_normal", "used_memory_dataset",
                                     "used_memory_scripts")}

    def fill(self, n: int, cap_s: float | None = None) -> tuple[int, bool, float]:
        """Queue n no-ops with the peer's fill API, in chunks; stop early
        after cap_s seconds. Returns (filled, capped, seconds)."""
        filled, capped = 0, False
        t0 = time.perf_counter()
        while filled < n:
            k = min(FILL_CHUNK, n - filled)
            self.peer.fill(k)
            filled += k
            if cap_s is not None and filled < n and time.perf_counter() - t0 > cap_s:
                capped = True
                break
        return filled, capped, time.perf_counter() - t0

    def run_backlog(self) -> None:
        """Fill `--backlog-size` no-op tasks, report Redis memory per queued
        task, then (repeated) the single-call enqueue rate of `--backlog-probe`
        more tasks and the 1-process drain rate of the first `--backlog-probe`
        tasks, with the backlog in place."""
        a, p, res = self.args, self.peer, self.result
        size, probe = a.backlog_size, a.backlog_probe
        res.update(mode="backlog", backlog_size=size, probe_tasks=probe,
                   fill_api=p.describe_fill())
        self.flush()
        p.setup()
        # warm-up (connections, script loads, registries), thrown away
        p.fill(100)
        p.enqueue_noops(100)
        self.flush()
        time.sleep(0.2)
        mem0, info0 = self.used_memory()
        filled, capped, fill_s = self.fill(size, a.fill_cap)
        mem1, info1 = self.used_memory()
        res["fill"] = {"requested": size, "filled": filled, "capped": capped,
                       "seconds": round(fill_s, 3), "rate": filled / fill_s if fill_s else None,
                       "cap_s": a.fill_cap}
        res["memory"] = {"before": info0, "after": info1,
                         "bytes_per_task": (mem1 - mem0) / filled if filled else None}
        log("backlog %d: filled %d in %.1fs (%s)%s, %.0f bytes/task" % (
            size, filled, fill_s, p.describe_fill(), " CAPPED" if capped else "",
            res["memory"]["bytes_per_task"] or 0))
        probes: list[dict[str, Any]] = []
        res["probes"] = probes
        for i in range(a.backlog_repeat):
            row: dict[str, Any] = {}
            probes.append(row)

            # called right away, in this iteration: the defaults only bind row and i
            def enqueue(row: dict[str, Any] = row) -> None:
                rate, _ = self.timed_enqueue(p.enqueue_noops, probe)
                row["enqueue_single"] = rate

            def drain(row: dict[str, Any] = row, i: int = i) -> None:
                rate, info, w = self.drain(1, "backlog%d-%d" % (size, i), n=probe, more_queued=True)
                w.stop()
                row["drain_1"] = rate
                row["drain_1_info"] = info

            self._phase("backlog_enqueue", enqueue, flush=False)
            self._phase("backlog_drain", drain, flush=False)
            log("backlog %d probe %d: enqueue %.0f/s, drain %.0f/s %s" % (
                size, i + 1, row.get("enqueue_single") or 0, row.get("drain_1") or 0,
                row.get("drain_1_info")))
        for key in ("enqueue_single", "drain_1"):
            vals = [r[key] for r in probes if r.get(key) is not None]
            res[key] = statistics.median(vals) if vals else None
        res["drain_complete"] = all((r.get("drain_1_info") or {}).get("complete", False)
                                    for r in probes if r.get("drain_1") is not None)
        self.flush()

