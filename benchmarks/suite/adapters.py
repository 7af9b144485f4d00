"""Running one adapter (``peers/<peer>/adapter.py``) in its system's venv:
it prints one JSON line; whatever it leaves behind is killed."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from typing import Any

from .common import PEERS, PEERS_DIR, REPO, WORK, child_env
from .server import RedisServer
from .venvs import venv_python


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def cleanup_workers(workdir: str) -> None:
    """Kill any worker process group an adapter left behind (crash/timeout)."""
    pidfile = os.path.join(workdir, "workers.pids")
    try:
        with open(pidfile) as f:
            pids = [int(x) for x in f.read().split()]
    except OSError:
        return
    for pid in pids:
        kill_group(pid)


def run_adapter(peer_id: str, server: RedisServer, args: argparse.Namespace, repeat_index: int,
                extra: Sequence[str] = (), tag: str | None = None,
                hard_timeout: float | None = None) -> dict[str, Any]:
    """Run one adapter invocation; `extra` adds adapter options (the
    backlog and profile modes), `tag` names its scratch directory."""
    spec = PEERS[peer_id]
    workdir = os.path.join(WORK, peer_id, tag or ("r%d" % repeat_index))
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    cmd = [venv_python(spec["venv"]), os.path.join(PEERS_DIR, spec["dir"], "adapter.py"),
           "--url", server.url, "--tasks", str(args.tasks),
           "--latency-samples", str(args.latency_samples),
           "--phase-timeout", str(args.phase_timeout),
           "--latency-timeout", str(args.latency_timeout),
           "--paired-rounds", str(args.paired_rounds),
           "--drain-counter", args.drain_counter,
           "--workdir", workdir, "--peer-id", peer_id]
    if spec.get("variant"):
        cmd += ["--variant", spec["variant"]]
    cmd += list(extra)
    if hard_timeout is None:
        # hard cap: three phases with workers, latency, enqueue of 3.5N at >= 200/s, slack
        hard_timeout = (3 * args.phase_timeout + args.latency_timeout + 3.5 * args.tasks / 200.0
                        + 120)
    errpath = os.path.join(workdir, "adapter.stderr")
    env = child_env()
    with open(errpath, "w") as errf:
        proc = subprocess.Popen(cmd, cwd=os.path.join(PEERS_DIR, spec["dir"]), env=env,
                                stdout=subprocess.PIPE, stderr=errf, stdin=subprocess.DEVNULL,
                                text=True, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=hard_timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            proc.wait()
            out = None
        finally:
            kill_group(proc.pid)
            cleanup_workers(workdir)
    result: dict[str, Any] | None = None
    if out:
        for line in reversed(out.strip().splitlines()):
            try:
                result = json.loads(line)
                break
            except ValueError:
                continue
    if result is None:
        tail = ""
        try:
            with open(errpath) as f:
                tail = "".join(f.readlines()[-12:])
        except OSError:
            pass
        result = {"ok": False,
                  "error": "adapter timed out after %.0fs" % hard_timeout if out is None
                  else "adapter printed no JSON (exit %s)" % proc.returncode,
                  "stderr_tail": tail}
    result["adapter_stderr"] = os.path.relpath(errpath, REPO)
    return result


def flat(result: dict[str, Any]) -> dict[str, float | None]:
    """The figures we aggregate, from one adapter result."""
    lat = result.get("latency") or {}
    return {
        "enqueue_single": result.get("enqueue_single"),
        "enqueue_batch": result.get("enqueue_batch"),
        "drain_1": result.get("drain_1"),
        "drain_2": result.get("drain_2"),
        "latency_p50_ms": lat.get("p50_ms"),
        "latency_p99_ms": lat.get("p99_ms"),
    }
