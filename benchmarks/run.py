#!/usr/bin/env python3
"""Benchmark rpqueue against its peers, side by side, on one redis-server.

    python3 benchmarks/run.py                 # full run (20,000 tasks, 3 repeats)
    python3 benchmarks/run.py --quick         # smoke run (2,000 tasks, 1 repeat)
    python3 benchmarks/run.py --peers rpqueue_orig,huey --repeat 1

Standard library only.  Each peer runs in its own venv under
benchmarks/.venvs/<venv> (created here on first use from
benchmarks/peers/<peer>/requirements.txt) through an adapter script that
prints one JSON line; see benchmarks/README.md for the method.

Writes BENCHMARKS.md (repo root), benchmarks/results/latest.json and
benchmarks/results/drain.png (matplotlib, in benchmarks/.venvs/harness).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PEERS_DIR = os.path.join(HERE, "peers")
VENVS = os.path.join(HERE, ".venvs")
WORK = os.path.join(HERE, ".work")
RESULTS = os.path.join(HERE, "results")

BASELINE = "rpqueue_orig"

# id -> how to run it.  "dir" is the adapter directory under peers/, "venv"
# the venv under .venvs/ (variants of one library share a venv).
PEERS = {
    "rpqueue_orig": dict(dir="rpqueue_orig", venv="rpqueue_orig",
                         label="rpqueue 0.33.7 (original, PyPI)"),
    "rpqueue_new": dict(dir="rpqueue_new", venv="rpqueue_new", editable=True,
                        label="rpqueue (this repo)"),
    "rq_simple": dict(dir="rq", venv="rq", variant="simple", label="RQ SimpleWorker"),
    "rq_fork": dict(dir="rq", venv="rq", variant="fork", label="RQ Worker (fork per job)"),
    "huey": dict(dir="huey", venv="huey", label="Huey (RedisHuey)"),
    "dramatiq": dict(dir="dramatiq", venv="dramatiq", label="Dramatiq"),
    "celery": dict(dir="celery", venv="celery", label="Celery (solo pool)"),
    "arq": dict(dir="arq", venv="arq", label="arq (max_jobs=1)"),
    "arq_fastpoll": dict(dir="arq", venv="arq", variant="fastpoll",
                         label="arq (max_jobs=1, poll_delay=0.01)"),
}

# run when --peers is not given; arq_fastpoll is an extra, opt-in variant
DEFAULT_PEERS = [p for p in PEERS if p != "arq_fastpoll"]

METRICS = [
    # key, column title, higher is better
    ("enqueue_single", "enqueue, single calls (tasks/s)", True),
    ("enqueue_batch", "enqueue, batch API (tasks/s)", True),
    ("drain_1", "drain, 1 process (tasks/s)", True),
    ("drain_2", "drain, 2 processes (tasks/s)", True),
    ("latency_p50_ms", "pickup p50 (ms)", False),
    ("latency_p99_ms", "pickup p99 (ms)", False),
]


def log(*args):
    print("[run %s]" % time.strftime("%H:%M:%S"), *args, flush=True)


# ---------------------------------------------------------------------------
# venvs
# ---------------------------------------------------------------------------

def _sha(*paths_or_text):
    h = hashlib.sha256()
    for item in paths_or_text:
        if os.path.isfile(item):
            with open(item, "rb") as f:
                h.update(f.read())
        else:
            h.update(item.encode())
    return h.hexdigest()


def venv_python(venv):
    return os.path.join(VENVS, venv, "bin", "python")


def ensure_venv(venv, requirements, editable=False):
    """Create/refresh benchmarks/.venvs/<venv>.  Returns None or an error."""
    path = os.path.join(VENVS, venv)
    stamp_file = os.path.join(path, ".bench-stamp")
    parts = [requirements, sys.version]
    if editable:
        parts += ["editable:" + REPO, os.path.join(REPO, "pyproject.toml")]
    stamp = _sha(*parts)
    try:
        with open(stamp_file) as f:
            if f.read().strip() == stamp and os.path.exists(venv_python(venv)):
                return None
    except OSError:
        pass
    os.makedirs(WORK, exist_ok=True)
    logpath = os.path.join(WORK, "setup-%s.log" % venv)
    log("setting up venv %s (log: %s)" % (venv, os.path.relpath(logpath, REPO)))
    with open(logpath, "w") as logf:
        def run(cmd):
            logf.write("$ %s\n" % shlex.join(cmd))
            logf.flush()
            return subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=900).returncode
        try:
            if not os.path.exists(venv_python(venv)):
                if run([sys.executable, "-m", "venv", path]) != 0:
                    return "python -m venv failed (see %s)" % logpath
            cmd = [venv_python(venv), "-m", "pip", "install", "--disable-pip-version-check",
                   "-q", "-r", requirements]
            if editable:
                cmd += ["-e", REPO]
            if run(cmd) != 0:
                return "pip install failed (see %s)" % os.path.relpath(logpath, REPO)
        except subprocess.TimeoutExpired:
            return "venv setup timed out"
    with open(stamp_file, "w") as f:
        f.write(stamp + "\n")
    return None


def setup_venvs(peer_ids, with_plot):
    """Set up every needed venv (in parallel).  Returns {venv: error-or-None}."""
    jobs = {}
    for pid in peer_ids:
        spec = PEERS[pid]
        jobs[spec["venv"]] = (os.path.join(PEERS_DIR, spec["dir"], "requirements.txt"),
                              spec.get("editable", False))
    if with_plot:
        jobs["harness"] = (os.path.join(HERE, "requirements-harness.txt"), False)
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as ex:
        futs = {venv: ex.submit(ensure_venv, venv, req, ed) for venv, (req, ed) in jobs.items()}
        return {venv: f.result() for venv, f in futs.items()}


# ---------------------------------------------------------------------------
# redis-server
# ---------------------------------------------------------------------------

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_cmd(port, *args, timeout=5.0):
    """Minimal RESP client: send one command, return the first reply line."""
    payload = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        payload += b"$%d\r\n%s\r\n" % (len(a), a)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        buf = b""
        while not buf.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    return buf.decode(errors="replace").strip()


class RedisServer:
    def __init__(self):
        self.port = free_port()
        self.dir = os.path.join(WORK, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.dir,
             "--logfile", os.path.join(self.dir, "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if redis_cmd(self.port, "PING", timeout=1) == "+PONG":
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start on port %d" % self.port)

    def alive(self):
        try:
            return self.proc.poll() is None and redis_cmd(self.port, "PING", timeout=2) == "+PONG"
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    @property
    def url(self):
        return "redis://127.0.0.1:%d/0" % self.port


def redis_benchmark(port):
    """`redis-benchmark -c 1 -n 100000 -t ping` -> {test: requests/s}."""
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", "1", "-n", "100000",
           "-t", "ping", "--csv"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         stdin=subprocess.DEVNULL).stdout
    res, detail = {}, {}
    header = None
    for line in out.splitlines():
        cells = [c.strip().strip('"') for c in line.split(",")]
        if cells and cells[0] == "test":
            header = cells
        elif len(cells) >= 2 and cells[0].startswith("PING"):
            try:
                res[cells[0]] = float(cells[1])
                if header:
                    detail[cells[0]] = dict(zip(header[1:], (float(c) for c in cells[1:])))
            except ValueError:
                pass
    return res, detail


# ---------------------------------------------------------------------------
# running adapters
# ---------------------------------------------------------------------------

def kill_group(pid, sig=signal.SIGKILL):
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def cleanup_workers(workdir):
    """Kill any worker process group an adapter left behind (crash/timeout)."""
    pidfile = os.path.join(workdir, "workers.pids")
    try:
        with open(pidfile) as f:
            pids = [int(x) for x in f.read().split()]
    except OSError:
        return
    for pid in pids:
        kill_group(pid)


def run_adapter(peer_id, server, args, repeat_index):
    spec = PEERS[peer_id]
    workdir = os.path.join(WORK, peer_id, "r%d" % repeat_index)
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    cmd = [venv_python(spec["venv"]), os.path.join(PEERS_DIR, spec["dir"], "adapter.py"),
           "--url", server.url, "--tasks", str(args.tasks),
           "--latency-samples", str(args.latency_samples),
           "--phase-timeout", str(args.phase_timeout),
           "--latency-timeout", str(args.latency_timeout),
           "--workdir", workdir, "--peer-id", peer_id]
    if spec.get("variant"):
        cmd += ["--variant", spec["variant"]]
    # hard cap: three phases with workers, latency, enqueue of 3N at >= 200/s, slack
    hard_timeout = 3 * args.phase_timeout + args.latency_timeout + 3 * args.tasks / 200.0 + 120
    errpath = os.path.join(workdir, "adapter.stderr")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
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
    result = None
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


def flat(result):
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


# ---------------------------------------------------------------------------
# facts and report
# ---------------------------------------------------------------------------

def machine_facts():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    osname = platform.platform()
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    osname = line.split("=", 1)[1].strip().strip('"') + ", kernel " + platform.release()
    except OSError:
        pass
    try:
        rv = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        rv = "?"
    try:
        rb = subprocess.run(["redis-benchmark", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        rb = "?"
    return {
        "cpu_model": cpu,
        "cpu_cores": os.cpu_count(),
        "memory_gib": _mem_gib(),
        "os": osname,
        "python": platform.python_version() + " (" + sys.executable + ")",
        "redis_server": rv,
        "redis_benchmark": rb,
    }


def repo_state():
    """Commit of this repo and whether src/ has uncommitted changes (for rpqueue_new)."""
    def git(*a):
        try:
            return subprocess.run(["git", "-C", REPO] + list(a), capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "--short", "HEAD") or "?",
            "src_dirty": bool(git("status", "--porcelain", "--", "src"))}


def _mem_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        return None


def fmt_num(v, higher_better=True):
    if v is None:
        return "n/a"
    if higher_better:
        if v >= 100:
            return "{:,.0f}".format(v)
        return "{:,.1f}".format(v)
    return "{:.2f}".format(v) if v < 100 else "{:,.0f}".format(v)


def fmt_ratio(r):
    if r is None:
        return ""
    if r >= 10:
        return " (%.0f×)" % r
    if r >= 0.1:
        return " (%.2f×)" % r
    return " (%.2g×)" % r


def write_markdown(path, report):
    m = report["machine"]
    cfg = report["config"]
    lines = []
    lines.append("# Benchmarks: rpqueue vs. peers")
    lines.append("")
    lines.append("Generated by `benchmarks/run.py` on %s. Method, fairness choices and "
                 "caveats: [benchmarks/README.md](benchmarks/README.md). Raw figures: "
                 "`benchmarks/results/latest.json`." % report["date"])
    lines.append("")
    lines.append("Command:")
    lines.append("")
    lines.append("```")
    lines.append(report["command"])
    lines.append("```")
    lines.append("")
    lines.append("## Machine")
    lines.append("")
    lines.append("| | |")
    lines.append("| --- | --- |")
    lines.append("| CPU | %s |" % m["cpu_model"])
    lines.append("| cores | %s |" % m["cpu_cores"])
    lines.append("| memory | %s GiB |" % m["memory_gib"])
    lines.append("| OS | %s |" % m["os"])
    lines.append("| Python | %s |" % m["python"].split(" (")[0])
    lines.append("| redis-server | %s |" % m["redis_server"])
    lines.append("")
    lines.append("Workers, producer, redis-server and the harness all share these cores.")
    loads = report.get("loadavg_1min_before_each_peer_run") or []
    if loads:
        lines.append("1-minute load average before each peer run: median %.2f, max %.2f "
                     "(includes the benchmark's own previous run; values well above the core "
                     "count mean other work was competing for the CPU)." % (
                         statistics.median(loads), max(loads)))
    lines.append("")
    lines.append("## Settings")
    lines.append("")
    lines.append("- tasks per phase: %s; repeats: %s (figures are medians)%s" % (
        "{:,}".format(cfg["tasks"]), cfg["repeat"], "; **quick smoke run**" if cfg["quick"] else ""))
    lines.append("- pickup latency: up to %d samples per repeat (time cap %gs), "
                 "1 idle worker process" % (cfg["latency_samples"], cfg["latency_timeout"]))
    lines.append("- a drain phase is cut off %gs after the workers are started; a cut-off "
                 "phase reports the rate over the tasks that ran (marked †)" % cfg["phase_timeout"])
    lines.append("- every worker runs at concurrency 1 (1 process, 1 thread); "
                 "`2 processes` = two such worker processes")
    lines.append("")
    rb = report.get("redis_benchmark") or {}
    lines.append("## Round-trip ceiling")
    lines.append("")
    if rb:
        mb = rb.get("PING_MBULK") or next(v for k, v in rb.items() if not k.startswith("_"))
        runs = [r.get("PING_MBULK") for r in report.get("redis_benchmark_runs_rps", []) if r.get("PING_MBULK")]
        spread = (" (range %s–%s over %d runs)" % ("{:,.0f}".format(min(runs)), "{:,.0f}".format(max(runs)),
                                                   len(runs))) if len(runs) > 1 else ""
        lines.append("`redis-benchmark -c 1 -n 100000 -t ping` (one client, one request in flight), "
                     "run once per repeat: **%s requests/s** median for PING_MBULK%s; PING_INLINE "
                     "%s. That is about %.0f µs per round trip: a producer or worker that needs k "
                     "sequential round trips per task cannot exceed about %s/k tasks/s on one "
                     "connection." % ("{:,.0f}".format(mb), spread,
                                      "{:,.0f}".format(rb.get("PING_INLINE", 0)), 1e6 / mb,
                                      "{:,.0f}".format(mb)))
    else:
        lines.append("redis-benchmark did not run.")
    lines.append("")
    lines.append("## Results")
    lines.append("")
    base = report["peers"].get(BASELINE, {})
    base_ok = bool(base.get("median"))
    if base_ok:
        lines.append("Ratios in parentheses are relative to the original rpqueue 0.33.7 "
                     "(value / baseline value): above 1 is better for rates, below 1 is "
                     "better for latency.")
    else:
        lines.append("The baseline (rpqueue 0.33.7) has no figures in this run, so no ratios.")
    lines.append("")
    head = ["system", "version"] + [t for _, t, _ in METRICS]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("| " + " | ".join(["---", "---"] + ["---:"] * len(METRICS)) + " |")
    failed = []
    for pid, p in report["peers"].items():
        if not p.get("median"):
            failed.append((pid, p))
            continue
        row = ["%s" % p["label"], p.get("version") or "?"]
        for key, _, hb in METRICS:
            v = p["median"].get(key)
            cell = fmt_num(v, hb)
            if v is None and any(ph in (p.get("phase_errors") or {}) for ph in METRIC_PHASE[key]):
                cell = "failed"
            if v is not None and key in ("drain_1", "drain_2") and p.get("partial", {}).get(key):
                cell += " †"
            if v is not None and base_ok and pid != BASELINE:
                cell += fmt_ratio(p["ratio"].get(key))
            row.append(cell)
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    if cfg["repeat"] > 1:
        lines.append("Spread over the %d repeats (min–max):" % cfg["repeat"])
        lines.append("")
        lines.append("| " + " | ".join(["system"] + [t for _, t, _ in METRICS]) + " |")
        lines.append("| " + " | ".join(["---"] + ["---:"] * len(METRICS)) + " |")
        for pid, p in report["peers"].items():
            if not p.get("median"):
                continue
            row = [p["label"]]
            for key, _, hb in METRICS:
                lo, hi = p["min"].get(key), p["max"].get(key)
                row.append("n/a" if lo is None else "%s–%s" % (fmt_num(lo, hb), fmt_num(hi, hb)))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    if any(p.get("partial") and any(p["partial"].values()) for p in report["peers"].values()):
        lines.append("† drain cut off at the time cap before the queue was empty: rate over the "
                     "tasks that did run (see `executed` in latest.json).")
        lines.append("")
    if failed:
        lines.append("### Failed or skipped")
        lines.append("")
        for pid, p in failed:
            lines.append("- **%s**: %s" % (p["label"], (p.get("error") or "no figures").splitlines()[0]))
        lines.append("")
    if "rpqueue_new" in report["peers"]:
        rs = report.get("repo") or {}
        lines.append("`rpqueue (this repo)` was measured from the working tree at commit %s%s." % (
            rs.get("commit", "?"), " with uncommitted changes in src/" if rs.get("src_dirty") else ""))
        lines.append("")
    lines.append("### Notes per system")
    lines.append("")
    for pid, p in report["peers"].items():
        notes = p.get("notes") or []
        extra = []
        if p.get("partial_runs"):
            extra.append("some repeats failed: %s" % "; ".join(p["partial_runs"]))
        for phase, err in (p.get("phase_errors") or {}).items():
            extra.append("phase %s failed: %s" % (phase, err))
        if notes or extra:
            lines.append("- **%s**: %s" % (p["label"], "; ".join(notes + extra)))
    lines.append("")
    lines.append("Pinned package versions: `benchmarks/peers/<peer>/requirements.txt`.")
    lines.append("")
    if report.get("plot"):
        lines.append("![drain rates](benchmarks/results/drain.png)")
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


def aggregate(peer_id, runs):
    spec = PEERS[peer_id]
    ok_runs = [r for r in runs if r.get("ok")]
    out = {"label": spec["label"], "runs": runs, "median": {}, "min": {}, "max": {},
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
    for key in ("drain_1", "drain_2"):
        infos = [r.get(key + "_info") or {} for r in ok_runs]
        out["partial"][key] = any(i and not i.get("complete", True) for i in infos)
    # phases that failed inside otherwise successful adapter runs
    errs = {}
    for r in ok_runs:
        for e in r.get("errors") or []:
            errs.setdefault(e.get("phase", "?"), (e.get("error") or "?").splitlines()[0][:300])
    out["phase_errors"] = errs
    return out


# which adapter phase produces each metric (for "failed" cells)
METRIC_PHASE = {"enqueue_single": ("enqueue_single",), "enqueue_batch": ("enqueue_batch",),
                "drain_1": ("drain_1",), "drain_2": ("drain_2", "refill"),
                "latency_p50_ms": ("latency",), "latency_p99_ms": ("latency",)}


def add_ratios(peers):
    base = peers.get(BASELINE, {}).get("median") or {}
    for pid, p in peers.items():
        for key, _, _ in METRICS:
            v, b = p["median"].get(key), base.get(key)
            p["ratio"][key] = (v / b) if (v is not None and b) else None


def make_plot(json_path, png_path):
    py = venv_python("harness")
    if not os.path.exists(py):
        return "harness venv missing"
    r = subprocess.run([py, os.path.join(HERE, "plot.py"), json_path, png_path],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        return "plot failed: " + r.stderr.strip()[-500:]
    return None


# ---------------------------------------------------------------------------

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=None, help="tasks per phase (default 20000)")
    ap.add_argument("--repeat", type=int, default=None, help="repeats, medians reported (default 3)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 2,000 tasks, 1 repeat, 100 latency samples")
    ap.add_argument("--peers", default=None,
                    help="comma-separated peer ids or prefixes; known: %s (default: all but "
                         "arq_fastpoll)" % ",".join(PEERS))
    ap.add_argument("--latency-samples", type=int, default=None, help="default 500 (100 with --quick)")
    ap.add_argument("--phase-timeout", type=float, default=12.0,
                    help="seconds after worker start before a drain phase is cut off (default 12)")
    ap.add_argument("--latency-timeout", type=float, default=10.0,
                    help="time cap of the latency phase in seconds (default 10)")
    ap.add_argument("--no-plot", action="store_true", help="skip the matplotlib venv and drain.png")
    ap.add_argument("--markdown", default=os.path.join(REPO, "BENCHMARKS.md"))
    a = ap.parse_args(argv)
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
    if a.peers:
        wanted = []
        for tok in [t.strip() for t in a.peers.split(",") if t.strip()]:
            match = [p for p in PEERS if p == tok] or [p for p in PEERS if p.startswith(tok)]
            if not match:
                ap.error("unknown peer %r (known: %s)" % (tok, ", ".join(PEERS)))
            wanted += [m for m in match if m not in wanted]
        a.peer_ids = [p for p in PEERS if p in wanted]
    else:
        a.peer_ids = list(DEFAULT_PEERS)
    return a


def main(argv=None):
    args = parse_args(argv)
    cmdline = shlex.join(["python3", os.path.relpath(os.path.abspath(sys.argv[0]), REPO)]
                         + (sys.argv[1:] if argv is None else argv))
    t_start = time.time()
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(RESULTS, exist_ok=True)

    def on_term(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)

    log("peers: %s; tasks=%d repeat=%d" % (", ".join(args.peer_ids), args.tasks, args.repeat))
    setup = setup_venvs(args.peer_ids, not args.no_plot)
    for venv, err in setup.items():
        if err:
            log("venv %s: %s" % (venv, err))

    runs = {pid: [] for pid in args.peer_ids}
    dead = {}
    for pid in args.peer_ids:
        err = setup.get(PEERS[pid]["venv"])
        if err:
            dead[pid] = "venv setup failed: " + err
            runs[pid].append({"ok": False, "error": dead[pid]})

    server = RedisServer()
    bench_runs, bench_detail = [], []
    loads = []
    server.start()
    log("redis-server on 127.0.0.1:%d" % server.port)
    try:
        for k in range(args.repeat):
            try:
                rb, detail = redis_benchmark(server.port)
                bench_runs.append(rb)
                bench_detail.append(detail)
                log("repeat %d/%d: redis-benchmark %s" % (k + 1, args.repeat, rb))
            except (OSError, subprocess.SubprocessError) as exc:
                log("redis-benchmark failed: %s" % exc)
            for pid in args.peer_ids:
                if pid in dead:
                    continue
                if not server.alive():
                    log("redis-server died; restarting")
                    server.stop()
                    server.start()
                redis_cmd(server.port, "FLUSHALL")
                t0 = time.time()
                load_before = os.getloadavg()[0]
                res = run_adapter(pid, server, args, k)
                dt = time.time() - t0
                res["loadavg_1min_before_after"] = [load_before, os.getloadavg()[0]]
                loads.append(load_before)
                runs[pid].append(res)
                if res.get("ok"):
                    f = flat(res)
                    log("%-13s r%d %5.1fs  enq %s  batch %s  drain1 %s  drain2 %s  p50 %s ms  p99 %s ms" % (
                        pid, k + 1, dt, *(fmt_num(f[m], hb) for m, _, hb in METRICS)))
                else:
                    log("%-13s r%d FAILED (%.1fs): %s" % (pid, k + 1, dt,
                                                          (res.get("error") or "?").splitlines()[0]))
                    # a peer that produced no figure at all on its first try
                    # (import error, broken install) is not retried
                    if k == 0 and not any(v is not None for v in flat(res).values()):
                        dead[pid] = res.get("error") or "failed"
    finally:
        server.stop()

    peers = {pid: aggregate(pid, runs[pid]) for pid in args.peer_ids}
    add_ratios(peers)
    rb_med = {}
    for key in sorted({k for r in bench_runs for k in r}):
        vals = [r[key] for r in bench_runs if key in r]
        rb_med[key] = statistics.median(vals)
    if bench_runs:
        rb_med["_runs"] = len(bench_runs)
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": cmdline,
        "config": {"tasks": args.tasks, "repeat": args.repeat, "quick": args.quick,
                   "latency_samples": args.latency_samples, "phase_timeout": args.phase_timeout,
                   "latency_timeout": args.latency_timeout, "peers": args.peer_ids},
        "machine": machine_facts(),
        "repo": repo_state(),
        "redis_benchmark": rb_med,
        "redis_benchmark_runs": bench_detail,
        "redis_benchmark_runs_rps": bench_runs,
        "loadavg_1min_before_each_peer_run": loads,
        "peers": peers,
        "baseline": BASELINE,
        "plot": None,
        "runtime_s": None,
    }
    json_path = os.path.join(RESULTS, "latest.json")
    png_path = os.path.join(RESULTS, "drain.png")
    report["runtime_s"] = round(time.time() - t_start, 1)
    with open(json_path, "w") as f:
        json.dump(report, f, indent=1)
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
    with open(json_path, "w") as f:
        json.dump(report, f, indent=1)
    write_markdown(args.markdown, report)
    log("wrote %s, %s%s (%.0fs)" % (os.path.relpath(args.markdown, REPO),
                                    os.path.relpath(json_path, REPO),
                                    ", " + report["plot"] if report["plot"] else "",
                                    report["runtime_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
