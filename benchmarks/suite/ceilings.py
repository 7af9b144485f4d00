"""The round-trip ceilings: redis-benchmark's PING (the C client) and
peers/pyceiling.py (redis-py with hiredis, in our rpqueue's venv), each once
per repeat, and their medians over the repeats."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
from typing import Any

from .common import CEILING_PEER, PEERS, PEERS_DIR, child_env, log
from .fmt import fmt_num
from .server import RedisServer
from .venvs import venv_python

# the Python ceiling figures (peers/pyceiling.py), medians kept per key
PY_CEILING_KEYS = ("client_rps", "connection_rps", "evalsha_rps", "evalsha_shaped_rps")


def python_ceiling(port: int, seconds: float) -> dict[str, Any]:
    """One redis-py client (hiredis parser), one command per round trip, in
    the rpqueue_new venv: peers/pyceiling.py.  `Redis.ping()` for `seconds`,
    then PING, EVALSHA of a trivial script and the same EVALSHA with
    execute()'s argument shape on one held connection, each for half that.
    Returns its JSON or raises."""
    py = venv_python(PEERS[CEILING_PEER]["venv"])
    if not os.path.exists(py):
        raise RuntimeError("venv %s missing" % PEERS[CEILING_PEER]["venv"])
    cmd = [py, os.path.join(PEERS_DIR, "pyceiling.py"), "--url",
           "redis://127.0.0.1:%d/0" % port, "--seconds", str(seconds),
           "--connection-seconds", str(max(0.5, seconds / 2.0))]
    env = child_env()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=2 * seconds + 60,
                       stdin=subprocess.DEVNULL, env=env)
    for line in reversed(r.stdout.strip().splitlines()):
        try:
            out: dict[str, Any] = json.loads(line)
            return out
        except ValueError:
            continue
    raise RuntimeError("pyceiling printed no JSON (exit %s): %s" % (r.returncode,
                                                                    r.stderr.strip()[-300:]))


def measure_py_ceiling(server: RedisServer, args: argparse.Namespace, k: int,
                       runs: list[dict[str, Any]]) -> str | None:
    """One python_ceiling() measurement, appended to `runs`; returns an error or None."""
    try:
        pc = python_ceiling(server.port, args.py_ceiling_seconds)
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        err = "%s: %s" % (type(exc).__name__, exc)
        log("Python ceiling failed: %s" % err)
        return err
    runs.append(pc)
    log("repeat %d/%d: redis-py PING %s/s (Redis.ping), %s/s (connection); "
        "EVALSHA %s/s (trivial), %s/s (execute()'s arguments)" % (
            k + 1, args.repeat, fmt_num(pc.get("client_rps")),
            fmt_num(pc.get("connection_rps")), fmt_num(pc.get("evalsha_rps")),
            fmt_num(pc.get("evalsha_shaped_rps"))))
    return None


def redis_benchmark_medians(bench_runs: list[dict[str, float]]) -> dict[str, float]:
    """Per redis-benchmark test, the median rate over the repeats."""
    med: dict[str, float] = {}
    for key in sorted({k for r in bench_runs for k in r}):
        med[key] = statistics.median([r[key] for r in bench_runs if key in r])
    if bench_runs:
        med["_runs"] = len(bench_runs)
    return med


def py_ceiling_summary(runs: list[dict[str, Any]], seconds: float,
                       error: str | None) -> dict[str, Any]:
    """Every pyceiling.py run, and per figure the median over them."""
    out: dict[str, Any] = {"runs": runs, "seconds": seconds, "error": error}
    for key in PY_CEILING_KEYS:
        vals = [r[key] for r in runs if r.get(key)]
        out[key] = statistics.median(vals) if vals else None
    return out
