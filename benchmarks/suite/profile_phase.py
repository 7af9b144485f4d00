"""--profile: where a task's time goes in our worker; one adapter run of our
rpqueue in ``--mode profile`` (py-spy, cProfile as the fallback)."""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from .adapters import run_adapter
from .common import PEERS, PROFILE_PEER, log
from .server import RedisServer, redis_cmd
from .venvs import ensure_py_spy


def run_profile_phase(server: RedisServer, args: argparse.Namespace,
                      setup: dict[str, str | None]) -> dict[str, Any]:
    """Drain --profile-tasks no-ops with our worker under py-spy (cProfile
    as the fallback): one adapter run in --mode profile."""
    pid = PROFILE_PEER
    spec = PEERS[pid]
    err = setup.get(spec["venv"])
    if err:
        return {"ok": False, "error": "venv setup failed: " + err}
    exe: str | None = None
    spy_err: str | None = None
    if args.profiler != "cprofile":
        exe, spy_err = ensure_py_spy()
        if spy_err:
            log("py-spy: %s" % spy_err)
    redis_cmd(server.port, "FLUSHALL", timeout=60)
    prefix = os.path.join(args.results_dir, "drain-profile")
    timeout = max(60.0, args.profile_tasks / 500.0)
    extra = ["--mode", "profile", "--profile-tasks", str(args.profile_tasks),
             "--profiler", args.profiler, "--profile-rate", str(args.profile_rate),
             "--profile-timeout", str(timeout), "--profile-out", prefix]
    if exe:
        extra += ["--py-spy", exe]
    t0 = time.time()
    res = run_adapter(pid, server, args, 0, extra, tag="profile",
                      hard_timeout=4 * timeout + args.profile_tasks / 100.0 + 180)
    res["wall_s"] = round(time.time() - t0, 1)
    res["label"] = spec["label"]
    if spy_err:
        res["py_spy_setup_error"] = spy_err
    prof = res.get("profile")
    if res.get("ok") and prof:
        log("%-13s profile (%s): %s" % (pid, prof.get("method"), ", ".join(
            "%s %.1f%%" % (r["key"], r["pct"] or 0) for r in prof.get("rows", []))))
    else:
        log("%-13s profile FAILED: %s" % (pid, (res.get("error") or "?").splitlines()[0]))
    try:
        redis_cmd(server.port, "FLUSHALL", timeout=60)
    except OSError:
        pass
    return res
