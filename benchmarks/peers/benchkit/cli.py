"""The adapter's command line, and its output: exactly one JSON line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from .keys import COUNTERS
from .peer import Peer
from .profile_mode import ProfileMode
from .standard import StandardMode


class Run(StandardMode, ProfileMode):
    """An adapter run in any mode."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="redis://127.0.0.1:PORT/DB")
    ap.add_argument("--tasks", type=int, default=20000)
    ap.add_argument("--latency-samples", type=int, default=500)
    ap.add_argument("--phase-timeout", type=float, default=60.0,
                    help="max seconds for one drain phase (worker start included)")
    ap.add_argument("--latency-timeout", type=float, default=20.0)
    ap.add_argument("--paired-rounds", type=int, default=10,
                    help="rounds of single enqueues vs the EVALSHA ceiling, interleaved (0: skip)")
    ap.add_argument("--workdir", required=True, help="scratch dir for worker logs")
    ap.add_argument("--variant", default=None)
    ap.add_argument("--drain-counter", choices=COUNTERS, default="local",
                    help="how the drain task counts: local (no Redis command per task) or "
                         "redis (one INCR per task)")
    ap.add_argument("--peer-id", default=None)
    ap.add_argument("--mode", choices=("standard", "backlog", "profile"), default="standard")
    # backlog mode
    ap.add_argument("--backlog-size", type=int, default=10000)
    ap.add_argument("--backlog-probe", type=int, default=20000,
                    help="tasks enqueued / drained per probe with the backlog in place")
    ap.add_argument("--backlog-repeat", type=int, default=3)
    ap.add_argument("--fill-cap", type=float, default=180.0,
                    help="stop filling the backlog after this many seconds (marked capped)")
    # profile mode
    ap.add_argument("--profile-tasks", type=int, default=20000)
    ap.add_argument("--profile-timeout", type=float, default=60.0)
    ap.add_argument("--profile-rate", type=int, default=1000, help="py-spy samples per second")
    ap.add_argument("--profiler", choices=("auto", "py-spy", "cprofile"), default="auto")
    ap.add_argument("--py-spy", default=None, help="path of the py-spy binary")
    ap.add_argument("--profile-out", default=None,
                    help="path prefix of the flame graph (.svg); raw data stays in --workdir")
    return ap.parse_args(argv)


def main(peer_factory: Callable[[str, argparse.Namespace], Peer],
         argv: list[str] | None = None) -> int:
    """Entry point of every adapter.  Prints exactly one JSON line on stdout."""
    args = parse_args(argv)
    out: dict[str, Any] = {"ok": False}
    code = 1
    run: Run | None = None
    try:
        peer = peer_factory(args.url, args)
        run = Run(peer, args)
        try:
            if args.mode == "backlog":
                run.run_backlog()
            elif args.mode == "profile":
                if not args.profile_out:
                    args.profile_out = os.path.join(args.workdir, "profile")
                run.run_profile()
            else:
                run.run()
            out = run.result
            out["ok"] = True
            code = 0
        finally:
            peer.close()
            run.counter.close()
    except BaseException as exc:  # report, never hang
        if run is not None:
            out = run.result
        out["ok"] = False
        out["error"] = "%s: %s" % (type(exc).__name__, exc)
        out["traceback"] = traceback.format_exc()[-3000:]
        code = 1
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return code
