"""The main measurement: each repeat, redis-benchmark and the Python
ceiling, then every system's adapter in turn (single and batch enqueue,
drains with 1 and 2 worker processes, pickup latency); then per system the
medians over the repeats and the ratios to the baseline."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from .adapters import flat, run_adapter
from .ceilings import measure_py_ceiling
from .common import BASELINE, CEILING_PEER, METRICS, PEERS, log
from .fmt import fmt_num
from .server import RedisServer, redis_benchmark, redis_cmd


@dataclass
class PeerRuns:
    """What the repeats of the main measurement collected."""

    runs: dict[str, list[dict[str, Any]]]
    # peers not run (again): venv failed, or no figure at all on the first try
    dead: dict[str, str]
    bench_runs: list[dict[str, float]] = field(default_factory=list)
    bench_detail: list[dict[str, dict[str, float]]] = field(default_factory=list)
    py_ceiling_runs: list[dict[str, Any]] = field(default_factory=list)
    py_ceiling_error: str | None = None
    loads: list[float] = field(default_factory=list)


def run_peers(server: RedisServer, args: argparse.Namespace,
              setup: dict[str, str | None]) -> PeerRuns:
    """--repeat rounds of: redis-benchmark, then each system's adapter (the
    Python ceiling right before our rpqueue's, else at the round's start)."""
    out = PeerRuns(runs={pid: [] for pid in args.peer_ids}, dead={})
    for pid in args.peer_ids:
        err = setup.get(PEERS[pid]["venv"])
        if err:
            out.dead[pid] = "venv setup failed: " + err
            out.runs[pid].append({"ok": False, "error": out.dead[pid]})
    for k in range(args.repeat):
        try:
            rb, detail = redis_benchmark(server.port)
            out.bench_runs.append(rb)
            out.bench_detail.append(detail)
            log("repeat %d/%d: redis-benchmark %s" % (k + 1, args.repeat, rb))
        except (OSError, subprocess.SubprocessError) as exc:
            log("redis-benchmark failed: %s" % exc)
        # the Python ceiling runs right before our rpqueue's own run (the
        # ratio of its execute() to it is a target), else here
        py_ceiling_due = args.py_ceiling_seconds > 0
        if py_ceiling_due and (CEILING_PEER not in args.peer_ids or CEILING_PEER in out.dead):
            _py_ceiling(server, args, k, out)
            py_ceiling_due = False
        for pid in args.peer_ids:
            if pid in out.dead:
                continue
            if not server.alive():
                log("redis-server died; restarting")
                server.stop()
                server.start()
            redis_cmd(server.port, "FLUSHALL")
            if pid == CEILING_PEER and py_ceiling_due:
                _py_ceiling(server, args, k, out)
                redis_cmd(server.port, "FLUSHALL")
            _run_one(pid, server, args, k, out)
    return out


def _py_ceiling(server: RedisServer, args: argparse.Namespace, k: int, out: PeerRuns) -> None:
    out.py_ceiling_error = (measure_py_ceiling(server, args, k, out.py_ceiling_runs)
                            or out.py_ceiling_error)


def _run_one(pid: str, server: RedisServer, args: argparse.Namespace, k: int,
             out: PeerRuns) -> None:
    t0 = time.time()
    load_before = os.getloadavg()[0]
    res = run_adapter(pid, server, args, k)
    dt = time.time() - t0
    res["loadavg_1min_before_after"] = [load_before, os.getloadavg()[0]]
    out.loads.append(load_before)
    out.runs[pid].append(res)
    if res.get("ok"):
        f = flat(res)
        log("%-13s r%d %5.1fs  enq %s  batch %s  drain1 %s  drain2 %s  p50 %s ms  p99 %s ms" % (
            pid, k + 1, dt, *(fmt_num(f[m], hb) for m, _, hb in METRICS)))
    else:
        log("%-13s r%d FAILED (%.1fs): %s" % (pid, k + 1, dt,
                                              (res.get("error") or "?").splitlines()[0]))
        # a peer that produced no figure at all on its first try (import
        # error, broken install) is not retried
        if k == 0 and not any(v is not None for v in flat(res).values()):
            out.dead[pid] = res.get("error") or "failed"


def aggregate(peer_id: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians, min and max over the repeats, and what failed."""
    spec = PEERS[peer_id]
    ok_runs = [r for r in runs if r.get("ok")]
    out: dict[str, Any] = {"label": spec["label"], "runs": runs, "median": {}, "min": {}, "max": {},
           "ratio": {}, "partial": {}, "notes": [], "version": None}
    if not ok_runs:
        out["error"] = runs[-1].get("error") if runs else "not run"
        return out
    out["version"] = ok_runs[0].get("version")
    out["notes"] = ok_runs[0].get("notes") or []
    out["system"] = ok_runs[0].get("system")
    bad = [r.get("error", "?").splitlines()[0] for r in runs if not r.get("ok")]
    if bad:
        out["partial_runs"] = bad
    for key, _, _ in METRICS:
        vals = [flat(r)[key] for r in ok_runs if flat(r)[key] is not None]
        if vals:
            out["median"][key] = statistics.median(vals)
            out["min"][key] = min(vals)
            out["max"][key] = max(vals)
        else:
            out["median"][key] = None
    # single enqueue vs the EVALSHA ceiling, interleaved in the producer
    paired = [r["paired_ceiling"] for r in ok_runs if (r.get("paired_ceiling") or {}).get("ratio")]
    if paired:
        ratios = [x["ratio"] for x in paired]
        out["paired"] = {
            "ratio": statistics.median(ratios), "min": min(ratios), "max": max(ratios),
            "runs": len(paired), "rounds": sum(x["rounds"] for x in paired),
            "block": paired[0]["block"],
            "enqueue_rps": statistics.median(x["enqueue_rps"] for x in paired),
            "evalsha_rps": statistics.median(x["evalsha_rps"] for x in paired)}
    for key in ("drain_1", "drain_2"):
        infos = [r.get(key + "_info") or {} for r in ok_runs]
        out["partial"][key] = any(i and not i.get("complete", True) for i in infos)
    # phases that failed inside otherwise successful adapter runs
    errs: dict[str, str] = {}
    for r in ok_runs:
        for e in r.get("errors") or []:
            errs.setdefault(e.get("phase", "?"), (e.get("error") or "?").splitlines()[0][:300])
    out["phase_errors"] = errs
    return out


def add_ratios(peers: dict[str, dict[str, Any]]) -> None:
    """Each median / the baseline's (None where either is missing)."""
    base = peers.get(BASELINE, {}).get("median") or {}
    for p in peers.values():
        for key, _, _ in METRICS:
            v, b = p["median"].get(key), base.get(key)
            p["ratio"][key] = (v / b) if (v is not None and b) else None
