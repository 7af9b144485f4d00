"""What ``benchmarks/run.py`` runs: set up, measure, write the results JSON,
the plot and BENCHMARKS.md; or, with --render-from, only the markdown."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Any

from .backlog import run_backlog_phase
from .ceilings import py_ceiling_summary, redis_benchmark_medians
from .cli import parse_args
from .common import BASELINE, BENCH, CEILING_PEER, PROFILE_PEER, REPO, WORK, log
from .facts import machine_facts, repo_state
from .peers_phase import PeerRuns, add_ratios, aggregate, run_peers
from .profile_phase import run_profile_phase
from .report import write_markdown
from .server import RedisServer
from .venvs import setup_venvs, venv_python


def main(argv: list[str] | None = None, description: str = "") -> int:
    args = parse_args(argv, description)
    if args.render_from:
        return render_only(args)
    cmdline = shlex.join(["python3", os.path.relpath(os.path.abspath(sys.argv[0]), REPO)]
                         + (sys.argv[1:] if argv is None else argv))
    t_start = time.time()
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(args.results_dir, exist_ok=True)

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)

    log("peers: %s; tasks=%d repeat=%d; drain counter %s%s%s" % (
        ", ".join(args.peer_ids), args.tasks, args.repeat, args.drain_counter,
        "; backlog %s on %s" % (",".join(str(n) for n in args.backlog_sizes),
                                ",".join(args.backlog_peers)) if args.backlog else "",
        "; profile %d tasks" % args.profile_tasks if args.profile else ""))
    # the rpqueue_new venv also runs the Python ceiling and the profile
    needed = list(dict.fromkeys(args.peer_ids + args.backlog_peers + [CEILING_PEER]
                                + ([PROFILE_PEER] if args.profile else [])))
    setup = setup_venvs(needed, not args.no_plot)
    for venv, err in setup.items():
        if err:
            log("venv %s: %s" % (venv, err))

    server = RedisServer()
    backlog = profile = None
    server.start()
    log("redis-server on 127.0.0.1:%d" % server.port)
    try:
        measured = run_peers(server, args, setup)
        if args.backlog:
            backlog = run_backlog_phase(server, args, setup)
        if args.profile:
            if not server.alive():
                server.stop()
                server.start()
            profile = run_profile_phase(server, args, setup)
    finally:
        server.stop()

    report = build_report(args, cmdline, measured, backlog, profile)
    json_path = os.path.join(args.results_dir, "latest.json")
    png_path = os.path.join(args.results_dir, "drain.png")
    # written before the plot, which reads it
    report["runtime_s"] = round(time.time() - t_start, 1)
    _dump(report, json_path)
    if not args.no_plot:
        if setup.get("harness"):
            log("no plot: harness venv: %s" % setup["harness"])
        else:
            err = make_plot(json_path, png_path)
            if err:
                log(err)
            else:
                report["plot"] = os.path.relpath(png_path, REPO)
    report["runtime_s"] = round(time.time() - t_start, 1)
    _dump(report, json_path)
    kept = write_markdown(args.markdown, report)
    log("wrote %s%s, %s%s (%.0fs)" % (os.path.relpath(args.markdown, REPO),
                                      " (kept its marked sections: %s)" % ", ".join(kept)
                                      if kept else "",
                                      os.path.relpath(json_path, REPO),
                                      ", " + report["plot"] if report["plot"] else "",
                                      report["runtime_s"]))
    return 0


def build_report(args: argparse.Namespace, cmdline: str, measured: PeerRuns,
                 backlog: dict[str, Any] | None, profile: dict[str, Any] | None
                 ) -> dict[str, Any]:
    """Everything latest.json holds (the markdown is written from it alone)."""
    peers = {pid: aggregate(pid, measured.runs[pid]) for pid in args.peer_ids}
    add_ratios(peers)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": cmdline,
        "config": {"tasks": args.tasks, "repeat": args.repeat, "quick": args.quick,
                   "latency_samples": args.latency_samples, "phase_timeout": args.phase_timeout,
                   "latency_timeout": args.latency_timeout, "peers": args.peer_ids,
                   "drain_counter": args.drain_counter,
                   "backlog": {"sizes": args.backlog_sizes, "probe": args.backlog_probe,
                               "repeat": args.backlog_repeat, "peers": args.backlog_peers,
                               "fill_cap": args.fill_cap} if args.backlog else None,
                   "profile_tasks": args.profile_tasks if args.profile else None,
                   "profiler": args.profiler if args.profile else None,
                   "full": args.full},
        "machine": machine_facts(),
        "repo": repo_state(),
        "redis_benchmark": redis_benchmark_medians(measured.bench_runs),
        "redis_benchmark_runs": measured.bench_detail,
        "redis_benchmark_runs_rps": measured.bench_runs,
        "python_ceiling": py_ceiling_summary(measured.py_ceiling_runs, args.py_ceiling_seconds,
                                             measured.py_ceiling_error),
        "backlog": backlog,
        "profile": profile,
        "loadavg_1min_before_each_peer_run": measured.loads,
        "peers": peers,
        "baseline": BASELINE,
        "plot": None,
        "runtime_s": None,
    }


def _dump(report: dict[str, Any], path: str) -> None:
    with open(path, "w") as f:
        json.dump(report, f, indent=1)


def make_plot(json_path: str, png_path: str) -> str | None:
    """drain.png with matplotlib in the harness venv; an error, or None."""
    py = venv_python("harness")
    if not os.path.exists(py):
        return "harness venv missing"
    r = subprocess.run([py, os.path.join(BENCH, "plot.py"), json_path, png_path],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        return "plot failed: " + r.stderr.strip()[-500:]
    return None


def render_only(args: argparse.Namespace) -> int:
    """--render-from: write the markdown from a saved results JSON, measuring
    nothing (the text and tables as this version of the harness writes them)."""
    with open(args.render_from, encoding="utf-8") as f:
        report = json.load(f)
    kept = write_markdown(args.markdown, report)
    log("wrote %s from %s%s" % (args.markdown, args.render_from,
                                " (kept its marked sections: %s)" % ", ".join(kept)
                                if kept else ""))
    return 0
