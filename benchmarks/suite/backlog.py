"""--backlog: for each backlog system and size, one adapter run in
``--mode backlog`` (memory per queued task, and enqueue and drain rates
with the backlog in place)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from .adapters import run_adapter
from .common import PEERS, log
from .fmt import fmt_num
from .server import RedisServer, redis_cmd


def run_backlog_phase(server: RedisServer, args: argparse.Namespace,
                      setup: dict[str, str | None]) -> dict[str, Any]:
    """For each backlog peer and size: one adapter run in --mode backlog."""
    out: dict[str, Any] = {}
    for pid in args.backlog_peers:
        spec = PEERS[pid]
        entry = out[pid] = {"label": spec["label"], "sizes": {}, "error": None}
        err = setup.get(spec["venv"])
        if err:
            entry["error"] = "venv setup failed: " + err
            log("%-13s backlog skipped: %s" % (pid, entry["error"]))
            continue
        for size in args.backlog_sizes:
            if not server.alive():
                log("redis-server died; restarting")
                server.stop()
                server.start()
            redis_cmd(server.port, "FLUSHALL", timeout=120)
            extra = ["--mode", "backlog", "--backlog-size", str(size),
                     "--backlog-probe", str(args.backlog_probe),
                     "--backlog-repeat", str(args.backlog_repeat),
                     "--fill-cap", str(args.fill_cap)]
            # fill (capped) + per probe: enqueue at >= 200/s, a drain, worker start/stop
            hard = (args.fill_cap + 120 + args.backlog_repeat
                    * (args.backlog_probe / 200.0 + args.phase_timeout + 30) + 120)
            t0 = time.time()
            res = run_adapter(pid, server, args, 0, extra, tag="backlog-%d" % size,
                              hard_timeout=hard)
            res["wall_s"] = round(time.time() - t0, 1)
            entry["sizes"][str(size)] = res
            if res.get("ok"):
                fill = res.get("fill") or {}
                log("%-13s backlog %9s: %5.1fs  fill %s in %.1fs%s  %s B/task  enq %s  drain1 %s%s" % (
                    pid, "{:,}".format(size), res["wall_s"], "{:,}".format(fill.get("filled", 0)),
                    fill.get("seconds") or 0, " (CAPPED)" if fill.get("capped") else "",
                    fmt_num((res.get("memory") or {}).get("bytes_per_task")),
                    fmt_num(res.get("enqueue_single")), fmt_num(res.get("drain_1")),
                    "" if res.get("drain_complete", True) else " †"))
            else:
                log("%-13s backlog %9s FAILED (%.1fs): %s" % (
                    pid, "{:,}".format(size), res["wall_s"],
                    (res.get("error") or "?").splitlines()[0]))
                if not (res.get("fill") or {}).get("filled"):
                    entry["error"] = res.get("error") or "failed"
                    break  # could not even fill: larger sizes will not do better
    try:
        redis_cmd(server.port, "FLUSHALL", timeout=120)
    except OSError:
        pass
    return out
