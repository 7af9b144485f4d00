"""The command line of benchmarks/run.py."""

from __future__ import annotations

import argparse
import os

from .common import DEFAULT_PEERS, PEERS, REPO, RESULTS, WORK

# --smoke: one tiny rpqueue-only run whose report goes here, not to BENCHMARKS.md
SMOKE_DIR = os.path.join(WORK, "smoke")


def parse_args(argv: list[str] | None = None, description: str = "") -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=description,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=None, help="tasks per phase (default 20000)")
    ap.add_argument("--repeat", type=int, default=None, help="repeats, medians reported (default 3)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 2,000 tasks, 1 repeat, 100 latency samples")
    ap.add_argument("--smoke", action="store_true",
                    help="check that the harness works: our rpqueue only (unless --peers), 200 "
                         "tasks, 1 repeat, 20 latency samples, short ceilings, no plot; writes "
                         "benchmarks/.work/smoke/ (smoke.md, latest.json), never BENCHMARKS.md "
                         "unless --markdown says so")
    ap.add_argument("--peers", default=None,
                    help="comma-separated peer ids or prefixes; known: %s (default: all but "
                         "arq_fastpoll)" % ",".join(PEERS))
    ap.add_argument("--latency-samples", type=int, default=None, help="default 500 (100 with --quick)")
    ap.add_argument("--phase-timeout", type=float, default=12.0,
                    help="seconds after worker start before a drain phase is cut off (default 12)")
    ap.add_argument("--latency-timeout", type=float, default=10.0,
                    help="time cap of the latency phase in seconds (default 10)")
    ap.add_argument("--no-plot", action="store_true", help="skip the matplotlib venv and drain.png")
    ap.add_argument("--markdown", default=None,
                    help="the report to write (default BENCHMARKS.md); its sections between "
                         "<!-- NAME:start --> and <!-- NAME:end --> markers (async_bench.py's) "
                         "are kept as they are")
    ap.add_argument("--render-from", default=None, metavar="JSON",
                    help="measure nothing: write --markdown from a saved latest.json")
    ap.add_argument("--results-dir", default=None,
                    help="where latest.json, drain.png and drain-profile.svg go "
                         "(default benchmarks/results)")
    ap.add_argument("--full", action="store_true",
                    help="the default run plus --backlog and --profile")
    ap.add_argument("--paired-rounds", type=int, default=10,
                    help="rounds of single enqueues vs the redis-py EVALSHA ceiling, interleaved "
                         "in each system's producer, max(100, tasks/20) calls per block "
                         "(default 10; 0 skips)")
    ap.add_argument("--drain-counter", choices=("local", "redis"), default="local",
                    help="how the drain task counts its executions: local (default; a true "
                         "no-op, no Redis command per task) or redis (one INCR per task, the "
                         "harness's protocol before this option)")
    ap.add_argument("--py-ceiling-seconds", type=float, default=2.0,
                    help="length of the redis-py PING loop (Python ceiling), per repeat "
                         "(default 2; 0 skips it)")
    g = ap.add_argument_group("backlog scaling (--backlog)")
    g.add_argument("--backlog", action="store_true",
                   help="also measure memory per queued task, enqueue and drain rates with "
                        "large backlogs queued")
    g.add_argument("--backlog-sizes", default=None,
                   help="comma-separated backlog sizes (default 10000,100000,1000000; "
                        "1000,10000 with --quick)")
    g.add_argument("--backlog-probe", type=int, default=None,
                   help="tasks enqueued and drained per probe (default 20000; 1000 with --quick)")
    g.add_argument("--backlog-repeat", type=int, default=None,
                   help="probes per backlog size, medians reported (default 3; 1 with --quick)")
    g.add_argument("--backlog-peers", default="rpqueue_new,rpqueue_orig",
                   help="systems for the backlog phase (default rpqueue_new,rpqueue_orig)")
    g.add_argument("--fill-cap", type=float, default=180.0,
                   help="seconds after which filling one backlog stops, marked ‡ (default 180)")
    g = ap.add_argument_group("profile (--profile)")
    g.add_argument("--profile", action="store_true",
                   help="also profile our worker draining no-op tasks (py-spy, else cProfile)")
    g.add_argument("--profile-tasks", type=int, default=None,
                   help="tasks counted in the profiled drain (default 20000; 2000 with --quick)")
    g.add_argument("--profiler", choices=("auto", "py-spy", "cprofile"), default="auto",
                   help="auto: py-spy, and cProfile if py-spy cannot be installed or attach")
    g.add_argument("--profile-rate", type=int, default=1000,
                   help="py-spy samples per second (default 1000)")
    a = ap.parse_args(argv)
    if a.smoke:
        _smoke_defaults(a)
    if a.markdown is None:
        a.markdown = os.path.join(REPO, "BENCHMARKS.md")
    if a.results_dir is None:
        a.results_dir = RESULTS
    if a.tasks is None:
        a.tasks = 2000 if a.quick else 20000
    if a.repeat is None:
        a.repeat = 1 if a.quick else 3
    if a.latency_samples is None:
        a.latency_samples = 100 if a.quick else 500
    if a.tasks < 1 or a.tasks > 1_000_000 or a.repeat < 1 or a.repeat > 20:
        ap.error("--tasks must be 1..1,000,000 and --repeat 1..20")
    if a.latency_samples < 0 or a.latency_samples > 100_000:
        ap.error("--latency-samples must be 0..100,000")
    if a.full:
        a.backlog = a.profile = True
    if a.backlog_sizes is None:
        a.backlog_sizes = "1000,10000" if a.quick else "10000,100000,1000000"
    try:
        a.backlog_sizes = sorted({int(x.replace("_", "")) for x in a.backlog_sizes.split(",")
                                  if x.strip()})
    except ValueError:
        ap.error("--backlog-sizes must be comma-separated integers")
    if not a.backlog_sizes or min(a.backlog_sizes) < 1 or max(a.backlog_sizes) > 10_000_000:
        ap.error("--backlog-sizes must be 1..10,000,000")
    if a.backlog_probe is None:
        a.backlog_probe = 1000 if a.quick else 20000
    if a.backlog_repeat is None:
        a.backlog_repeat = 1 if a.quick else 3
    if a.profile_tasks is None:
        a.profile_tasks = 2000 if a.quick else 20000
    if not 1 <= a.backlog_probe <= 1_000_000 or not 1 <= a.backlog_repeat <= 20:
        ap.error("--backlog-probe must be 1..1,000,000 and --backlog-repeat 1..20")
    if not 100 <= a.profile_tasks <= 1_000_000 or not 10 <= a.profile_rate <= 5000:
        ap.error("--profile-tasks must be 100..1,000,000 and --profile-rate 10..5000")
    if a.fill_cap <= 0 or a.py_ceiling_seconds < 0 or not 0 <= a.paired_rounds <= 1000:
        ap.error("--fill-cap must be > 0, --py-ceiling-seconds >= 0 and --paired-rounds 0..1000")
    a.results_dir = os.path.abspath(a.results_dir)
    if a.peers:
        wanted: list[str] = []
        for tok in [t.strip() for t in a.peers.split(",") if t.strip()]:
            match = [p for p in PEERS if p == tok] or [p for p in PEERS if p.startswith(tok)]
            if not match:
                ap.error("unknown peer %r (known: %s)" % (tok, ", ".join(PEERS)))
            wanted += [m for m in match if m not in wanted]
        a.peer_ids = [p for p in PEERS if p in wanted]
    else:
        a.peer_ids = list(DEFAULT_PEERS)
    a.backlog_peers = _peer_list(ap, a.backlog_peers) if a.backlog else []
    return a


def _peer_list(ap: argparse.ArgumentParser, text: str) -> list[str]:
    out: list[str] = []
    for tok in [t.strip() for t in text.split(",") if t.strip()]:
        if tok not in PEERS:
            ap.error("unknown peer %r (known: %s)" % (tok, ", ".join(PEERS)))
        if tok not in out:
            out.append(tok)
    return out


def _smoke_defaults(a: argparse.Namespace) -> None:
    """--smoke: the smallest settings that still run every phase of one
    adapter; options given explicitly are kept (the timed ones only shrink)."""
    a.quick = True
    a.no_plot = True
    a.peers = a.peers or "rpqueue_new"
    a.tasks = a.tasks or 200
    a.repeat = a.repeat or 1
    a.latency_samples = 20 if a.latency_samples is None else a.latency_samples
    a.latency_timeout = min(a.latency_timeout, 3.0)
    a.paired_rounds = min(a.paired_rounds, 2)
    a.py_ceiling_seconds = min(a.py_ceiling_seconds, 0.5)
    if a.results_dir is None:
        a.results_dir = SMOKE_DIR
    if a.markdown is None:
        a.markdown = os.path.join(a.results_dir, "smoke.md")
