#!/usr/bin/env python3
"""Benchmark rpqueue against its peers, side by side, on one redis-server.

    python3 benchmarks/run.py                 # default run (20,000 tasks, 3 repeats)
    python3 benchmarks/run.py --full          # + backlog scaling (--backlog) + profile (--profile)
    python3 benchmarks/run.py --quick         # smoke run (2,000 tasks, 1 repeat)
    python3 benchmarks/run.py --peers rpqueue_orig,huey --repeat 1
    python3 benchmarks/run.py --render-from benchmarks/results/latest.json  # re-render only

Standard library only.  Each peer runs in its own venv under
benchmarks/.venvs/<venv> (created here on first use from
benchmarks/peers/<peer>/requirements.txt) through an adapter script that
prints one JSON line; see benchmarks/README.md for the method.

Writes BENCHMARKS.md (repo root), benchmarks/results/latest.json and
benchmarks/results/drain.png (matplotlib, in benchmarks/.venvs/harness).
BENCHMARKS.md is rewritten except for the sections other scripts keep in it
between <!-- NAME:start --> and <!-- NAME:end --> (async_bench.py's), which
are carried over verbatim.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import hashlib
import json
import os
import platform
import re
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


# how the drain task counts its executions (--drain-counter); a results file
# from before the option was measured with "redis"
COUNTER_TEXT = {
    "local": ("a true no-op: the task body sends no Redis command; it counts itself by "
              "appending one byte to a tmpfs file (two system calls, about 1 µs)"),
    "redis": "one `INCR` round trip to Redis per task (`--drain-counter redis`)",
}
COUNTER_SHORT = {"local": "no Redis command, a local counter", "redis": "one `INCR`"}


def drain_counter(report):
    return (report.get("config") or {}).get("drain_counter") or "redis"


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


# the venv whose redis-py (with hiredis) measures the Python ceiling, and
# which gets py-spy for --profile
CEILING_PEER = "rpqueue_new"
PROFILE_PEER = "rpqueue_new"


# the Python ceiling figures (peers/pyceiling.py), medians kept per key
PY_CEILING_KEYS = ("client_rps", "connection_rps", "evalsha_rps", "evalsha_shaped_rps")


def python_ceiling(port, seconds):
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
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=2 * seconds + 60,
                       stdin=subprocess.DEVNULL, env=env)
    for line in reversed(r.stdout.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    raise RuntimeError("pyceiling printed no JSON (exit %s): %s" % (r.returncode,
                                                                    r.stderr.strip()[-300:]))


def measure_py_ceiling(server, args, k, runs):
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


def ensure_py_spy():
    """py-spy (pinned in peers/rpqueue_new/requirements-profile.txt) in the
    rpqueue_new venv.  Returns (path or None, error or None)."""
    venv = PEERS[PROFILE_PEER]["venv"]
    req = os.path.join(PEERS_DIR, PEERS[PROFILE_PEER]["dir"], "requirements-profile.txt")
    exe = os.path.join(VENVS, venv, "bin", "py-spy")
    want = None
    with open(req) as f:
        for line in f:
            if line.strip().startswith("py-spy=="):
                want = line.strip().split("==", 1)[1]

    def version():
        try:
            out = subprocess.run([exe, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout.split()
            return out[-1] if out else None
        except (OSError, subprocess.SubprocessError):
            return None

    if os.path.exists(exe) and (want is None or version() == want):
        return exe, None
    logpath = os.path.join(WORK, "setup-py-spy.log")
    log("installing py-spy into venv %s (log: %s)" % (venv, os.path.relpath(logpath, REPO)))
    try:
        with open(logpath, "w") as logf:
            rc = subprocess.run([venv_python(venv), "-m", "pip", "install",
                                 "--disable-pip-version-check", "-q", "-r", req],
                                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                timeout=600).returncode
    except (OSError, subprocess.SubprocessError) as exc:
        return None, "pip install py-spy failed: %s" % exc
    if rc != 0 or not os.path.exists(exe):
        return None, "pip install py-spy failed (see %s)" % os.path.relpath(logpath, REPO)
    return exe, None


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


def run_adapter(peer_id, server, args, repeat_index, extra=(), tag=None, hard_timeout=None):
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
# backlog scaling and profile
# ---------------------------------------------------------------------------

def run_backlog_phase(server, args, setup):
    """For each backlog peer and size: one adapter run in --mode backlog."""
    out = {}
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


def run_profile_phase(server, args, setup):
    """Drain --profile-tasks no-ops with our worker under py-spy (cProfile
    as the fallback): one adapter run in --mode profile."""
    pid = PROFILE_PEER
    spec = PEERS[pid]
    err = setup.get(spec["venv"])
    if err:
        return {"ok": False, "error": "venv setup failed: " + err}
    exe, spy_err = (None, None)
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
            return subprocess.run(["git", "-C", REPO, *a], capture_output=True, text=True,
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


def md_rel(path, md_path):
    """`path` as a link relative to the markdown file's directory."""
    return os.path.relpath(os.path.abspath(path), os.path.dirname(os.path.abspath(md_path)))


def fmt_int(v):
    return "n/a" if v is None else "{:,.0f}".format(v)


def pct(v, of):
    return "n/a" if (v is None or not of) else "%.0f%%" % (100.0 * v / of)


def ceiling_figures(report):
    """The round-trip ceilings of this run (medians over the repeats), each
    None when missing: `rb` redis-benchmark PING_MBULK (C client); from
    redis-py with hiredis, one command per round trip: `client`
    (`Redis.ping()`), `conn` (PING on one held connection), `evalsha`
    (EVALSHA of a trivial script on one held connection: the judged one) and
    `shaped` (the same EVALSHA with execute()'s arguments; not a ceiling)."""
    rb = report.get("redis_benchmark") or {}
    mb = rb.get("PING_MBULK") or next((v for k, v in rb.items() if not k.startswith("_")), None)
    pc = report.get("python_ceiling") or {}
    return {"rb": mb, "client": pc.get("client_rps"), "conn": pc.get("connection_rps"),
            "evalsha": pc.get("evalsha_rps"), "shaped": pc.get("evalsha_shaped_rps")}


def _us(rate):
    return "n/a" if not rate else "%.1f" % (1e6 / rate)


def python_ceiling_lines(report):
    lines = []
    pc = report.get("python_ceiling") or {}
    c = ceiling_figures(report)
    runs = pc.get("runs") or []
    if c["client"]:
        first = runs[0] if runs else {}
        conn_s = max(0.5, (pc.get("seconds") or 2) / 2.0)
        lines.append("From Python: one redis-py %s client%s (the `rpqueue_new` venv), one "
                     "command per round trip on one connection, each loop once per repeat, "
                     "right before our rpqueue's run (medians over %d run%s):" % (
                         first.get("redis_py", "?"),
                         " with the hiredis parser" if first.get("hiredis") else
                         " (no hiredis: pure-Python parser)", len(runs),
                         "" if len(runs) == 1 else "s"))
        lines.append("")
        many = len(runs) > 1
        lines.append("| loop (redis-py, one request in flight) | seconds | calls/s | "
                     "µs per call |" + (" min–max |" if many else ""))
        lines.append("| --- | ---: | ---: | ---: |" + (" ---: |" if many else ""))

        def row(label, key, fig, seconds):
            vals = [r[key] for r in runs if r.get(key)]
            spread = (" %s–%s |" % (fmt_int(min(vals)), fmt_int(max(vals))) if many else "")
            lines.append("| %s | %g | %s | %s |%s" % (label, seconds, fmt_int(fig), _us(fig),
                                                      spread))

        row("`Redis.ping()` (the public client API: pool checkout, command wrappers)",
            "client_rps", c["client"], pc.get("seconds", 2))
        if c["conn"]:
            row("`PING` on one held connection (`send_command` + `read_response`)",
                "connection_rps", c["conn"], conn_s)
        if c["evalsha"]:
            row("**`EVALSHA` of a trivial script (`return 1`, no keys) on one held connection**: "
                "the kind of call `execute()` makes, with no script work. The ceiling the "
                "single-`execute()` target is judged against", "evalsha_rps", c["evalsha"], conn_s)
        else:
            lines.append("| `EVALSHA` of a trivial script on one held connection | | not measured "
                         "in this run (older harness) | |" + (" |" if many else ""))
        if c["shaped"]:
            row("the same `EVALSHA` with the arguments of one no-op `execute()` (7 keys, the "
                "id, the ~100-byte message, 3 small values). Not a ceiling: the difference to "
                "the row above is packing and sending those arguments",
                "evalsha_shaped_rps", c["shaped"], conn_s)
        lines.append("")
        if c["rb"] and c["conn"]:
            lines.append("In this run the held-connection `PING` loop reached %s of "
                         "redis-benchmark's rate." % pct(c["conn"], c["rb"]))
            lines.append("")
    elif pc.get("error"):
        lines.append("The Python ceiling did not run: %s" % pc["error"])
        lines.append("")
    rows = [(p["label"], (p.get("median") or {}).get("enqueue_single"), p.get("paired"))
            for p in report["peers"].values() if (p.get("median") or {}).get("enqueue_single")]
    has_paired = any(pr for _, _, pr in rows)
    if has_paired:
        lines.append(
            "Interleaved in each system's producer: %s rounds per run, each one block of "
            "single-call enqueues and one block of the same number of trivial `EVALSHA` calls on "
            "one held redis-py connection (%s calls per block, the order alternating), in the "
            "same process, seconds apart at most. Whatever slows round trips (other load; on a "
            "small VM, whether the producer and redis-server happen to share a core) weighs on "
            "both alike. The ratio is taken per round; each run reports the median of its "
            "rounds, and the cell is the median of the runs (with their min–max)." % (
                next(pr["rounds"] // pr["runs"] for _, _, pr in rows if pr),
                fmt_int(next(pr["block"] for _, _, pr in rows if pr))))
        lines.append("")
    if rows and (c["rb"] or c["client"] or has_paired):
        lines.append("Single-call enqueue (`execute()` and equivalents: one task per call, "
                     "calls one after another on one client) as a share of these ceilings:")
        lines.append("")
        cols = [(title, c[key]) for key, title in (
            ("rb", "% of redis-benchmark PING"), ("client", "% of redis-py `Redis.ping()`"),
            ("conn", "% of redis-py held-connection PING"),
            ("evalsha", "% of redis-py held-connection EVALSHA")) if c[key]]
        head = ["system", "enqueue, single calls (tasks/s)"] + [t for t, _ in cols]
        if has_paired:
            head.append("**% of the EVALSHA ceiling, interleaved in the producer** (judged)")
        lines.append("| " + " | ".join(head) + " |")
        lines.append("| --- |" + " ---: |" * (len(head) - 1))
        for label, v, pr in rows:
            cells = [label, fmt_int(v)] + [pct(v, fig) for _, fig in cols]
            if has_paired:
                cells.append("n/a" if not pr else "%.0f%%%s" % (
                    100 * pr["ratio"], "" if pr["runs"] < 2 else " (%.0f–%.0f%%)" % (
                        100 * pr["min"], 100 * pr["max"])))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def backlog_lines(report):
    bl = report.get("backlog")
    if not bl:
        return []
    cfg = report["config"].get("backlog") or {}
    lines = ["## Backlog scaling", ""]
    lines.append(
        "For each system and each size N: `FLUSHALL`, then N no-op tasks are queued with the "
        "system's fastest enqueue API (below), and Redis `used_memory` less the memory of client "
        "buffers (`mem_clients_normal`) is read before and after: **memory per queued task** = "
        "difference / N. A fill that takes longer than %gs is cut short and marked ‡. Then, with "
        "the backlog in place, %d probe(s): enqueue %s more tasks with single calls (rate), "
        "then start 1 worker process and time its first %s tasks, counted as in the drain "
        "phases (first task start to the end of the last); the worker is then stopped and the "
        "rest of the backlog stays. Cells are medians over the probes, with min–max when there "
        "is more than one." % (cfg.get("fill_cap", 0), cfg.get("repeat", 1),
                               fmt_int(cfg.get("probe")), fmt_int(cfg.get("probe"))))
    lines.append("")
    for entry in bl.values():
        api = next((r.get("fill_api") for r in entry["sizes"].values() if r.get("fill_api")), None)
        if api:
            lines.append("- %s fills with: %s" % (entry["label"], api))
    lines.append("")
    lines.append("| system | queued | memory per queued task (bytes) | enqueue, single calls "
                 "(tasks/s) | drain, 1 process (tasks/s) | fill time (s) |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    base = bl.get(BASELINE, {}).get("sizes", {})

    def probe_cell(res, key):
        vals = [r.get(key) for r in res.get("probes") or [] if r.get(key) is not None]
        v = res.get(key)
        if v is None:
            return "failed" if res.get("ok") else "n/a"
        cell = fmt_int(v)
        if len(vals) > 1:
            cell += " (%s–%s)" % (fmt_int(min(vals)), fmt_int(max(vals)))
        if key == "drain_1" and not res.get("drain_complete", True):
            cell += " †"
        return cell

    notes = []
    for pid, entry in bl.items():
        if entry.get("error") and not entry["sizes"]:
            lines.append("| %s | failed: %s | | | | |" % (entry["label"],
                                                         entry["error"].splitlines()[0][:120]))
            continue
        for size, res in entry["sizes"].items():
            if not res.get("ok") and not res.get("fill"):
                lines.append("| %s | %s | failed: %s | | | |" % (
                    entry["label"], fmt_int(int(size)), (res.get("error") or "?").splitlines()[0][:120]))
                continue
            fill = res.get("fill") or {}
            queued = fmt_int(fill.get("filled"))
            if fill.get("capped"):
                queued += " ‡ (of %s)" % fmt_int(int(size))
            mem = (res.get("memory") or {}).get("bytes_per_task")
            mcell = "n/a" if mem is None else "{:,.0f}".format(mem)
            bmem = ((base.get(size) or {}).get("memory") or {}).get("bytes_per_task")
            if mem is not None and bmem and pid != BASELINE:
                mcell += fmt_ratio(mem / bmem)
            lines.append("| %s | %s | %s | %s | %s | %s |" % (
                entry["label"], queued, mcell, probe_cell(res, "enqueue_single"),
                probe_cell(res, "drain_1"),
                "n/a" if fill.get("seconds") is None else "%.1f" % fill["seconds"]))
            for e in res.get("errors") or []:
                notes.append("%s, %s queued: phase %s failed: %s" % (
                    entry["label"], fmt_int(int(size)), e.get("phase"),
                    (e.get("error") or "?").splitlines()[0][:200]))
    lines.append("")
    if base:
        lines.append("Memory ratios in parentheses are relative to rpqueue 0.33.7 at the same N "
                     "(below 1 is smaller).")
        lines.append("")
    ratios = backlog_ratios(report)
    if ratios:
        lo, hi = ratios["sizes"]
        capped = [bl[pid]["label"] for pid in ratios["peers"]
                  if ((bl[pid]["sizes"].get(str(hi)) or {}).get("fill") or {}).get("capped")]
        lines.append("Rates at %s queued relative to %s queued (issue #6 asks for rates within "
                     "20%%, i.e. a ratio of at least 0.80)%s:" % (
                         fmt_int(hi), fmt_int(lo),
                         "; for %s the largest backlog was capped (‡), so its ratio is at the "
                         "size actually queued" % ", ".join(capped) if capped else ""))
        lines.append("")
        lines.append("| system | enqueue, single calls | drain, 1 process |")
        lines.append("| --- | ---: | ---: |")
        for pid, r in ratios["peers"].items():
            lines.append("| %s | %s | %s |" % (
                bl[pid]["label"], "n/a" if r["enqueue_single"] is None else "%.2f" % r["enqueue_single"],
                "n/a" if r["drain_1"] is None else "%.2f" % r["drain_1"]))
        lines.append("")
    if any(not r.get("drain_complete", True) for e in bl.values() for r in e["sizes"].values()):
        lines.append("† a drain probe was cut off at the time cap (%gs after the worker started): "
                     "rate over the tasks that ran." % report["config"]["phase_timeout"])
        lines.append("")
    for n in notes:
        lines.append("- %s" % n)
    if notes:
        lines.append("")
    return lines


def backlog_ratios(report):
    """{'sizes': (smallest, largest), 'peers': {pid: {metric: largest/smallest}}} or None."""
    bl = report.get("backlog") or {}
    sizes = sorted({int(s) for e in bl.values() for s in e["sizes"]})
    if len(sizes) < 2:
        return None
    lo, hi = str(sizes[0]), str(sizes[-1])
    out = {"sizes": (sizes[0], sizes[-1]), "peers": {}}
    for pid, e in bl.items():
        a, b = e["sizes"].get(lo) or {}, e["sizes"].get(hi) or {}
        r = {}
        for key in ("enqueue_single", "drain_1"):
            r[key] = (b[key] / a[key]) if (a.get(key) and b.get(key)) else None
        out["peers"][pid] = r
    return out


def profile_lines(report, md_path):
    res = report.get("profile")
    if not res:
        return []
    lines = ["## Where a task's time goes", ""]
    prof = res.get("profile")
    if not res.get("ok") or not prof:
        lines.append("The profile run failed: %s" % (res.get("error") or "?").splitlines()[0])
        lines.append("")
        return lines
    t = prof["timing"]
    rate = prof.get("drain_rate")
    passes = prof.get("passes") or {}
    prof_rates = ", ".join("%s %s tasks/s" % (name, fmt_int(passes[tag].get("drain_rate")))
                           for tag, name in (("wall", "`--idle`"), ("gil", "`--gil`"),
                                             ("cprofile", "cProfile"))
                           if tag in passes and passes[tag].get("drain_rate"))
    lines.append(
        "%s, 1 worker process with 1 thread, draining %s no-op tasks (the same task body as "
        "the drain phases: %s), once with no profiler and then under **%s**%s. "
        "Without a profiler the drain ran at %s tasks/s; in that window (%s tasks, %.2f s) the "
        "worker thread spent **%.1f µs per task**: %.1f µs on a CPU (%.1f user, %.1f system), "
        "%.1f µs runnable but waiting for a free core, and %.1f µs blocked, waiting for "
        "Redis's replies. Under the profiler: %s%s." % (
            res.get("label", PROFILE_PEER), fmt_int(report["config"].get("profile_tasks")),
            COUNTER_SHORT[drain_counter(report)], prof.get("profiler", prof.get("method")),
            (" (fallback: %s)" % res["fallback_reason"]) if res.get("fallback_reason") else "",
            fmt_int(rate), fmt_int(t["tasks"]), t["wall_s"], t["wall_us"], t["run_us"],
            t["user_us"], t["sys_us"], t["runq_us"],
            max(0.0, t["wall_us"] - t["run_us"] - t["runq_us"]), prof_rates or "n/a",
            ("; py-spy `--idle` itself used %.0f%% of a core" % (100 * prof["profiler_cpu_share"]))
            if prof.get("profiler_cpu_share") is not None else ""))
    lines.append("")
    lines.append("| where the time goes | µs per task | share |")
    lines.append("| --- | ---: | ---: |")
    split = prof.get("task_split") or {}
    for r in prof["rows"]:
        lines.append("| %s | %.1f | %.1f%% |" % (r["label"], r["us"], r["pct"] or 0))
        if r["key"] == "task" and prof.get("method") == "py-spy" \
                and drain_counter(report) == "redis":
            for key, label in (("task_redis_wait", "its `INCR` round trip"),
                               ("task_python", "its Python (redis-py's `incr()` call path)")):
                if key in split:
                    lines.append("| &nbsp;&nbsp;of which %s | %.1f | %.1f%% |" % (
                        label, split[key]["us"], split[key]["pct"] or 0))
    lines.append("| **total (wall time per task)** | **%.1f** | 100%% |" % t["wall_us"])
    lines.append("")
    if prof.get("method") == "cProfile":
        tc = prof.get("task_cumulative") or {}
        lines.append("cProfile sees no stacks%s; the task body "
                     "as a whole took %s%% of the profiled thread time. cProfile also inflates "
                     "Python time (about 2× per call here)." % (
                         ": the task's own `INCR` (its redis-py calls and its socket wait) is "
                         "counted in the redis-py and round-trip rows"
                         if drain_counter(report) == "redis" else "", tc.get("pct", "?")))
        lines.append("")
    if prof.get("top_python"):
        lines.append("Top functions by self time while on a CPU in Python (%s; µs per task "
                     "scaled to the measured user time):" % prof.get("method"))
        lines.append("")
        lines.append("| function | file | category | µs per task | % of Python time |")
        lines.append("| --- | --- | --- | ---: | ---: |")
        for f in prof["top_python"]:
            fn = f["function"].replace("|", "\\|")
            fl = f["file"]
            if "site-packages/" in fl:
                fl = fl.split("site-packages/", 1)[1]
            elif "/src/" in fl:
                fl = fl.split("/src/", 1)[1]
            lines.append("| `%s` | %s | %s | %s | %s |" % (
                fn, fl, f["category"], "n/a" if f["us"] is None else "%.2f" % f["us"],
                "n/a" if f["pct_of_python"] is None else "%.1f%%" % f["pct_of_python"]))
        lines.append("")
    samples = prof.get("samples") or {}
    if prof.get("method") == "py-spy":
        lines.append(
            "How the split is made: the totals come from the kernel's accounting of the worker "
            "thread during the drain without a profiler (`/proc/<pid>/task/<tid>/schedstat`: "
            "time on a CPU and time waiting for one; `stat`: the user/system split). Blocked "
            "time plus system time is Redis round trips (send/recv)%s; a py-spy `--idle` pass "
            "had %s socket samples of %s worker-thread samples. User time is divided among the "
            "Python rows by the samples that run Python: the other %s samples of that pass, "
            "pooled with %s from a drain of twice as many tasks under py-spy `--gil`, which "
            "only samples the thread while it holds the GIL. The raw `--idle` shares are not "
            "used directly: on a 2-core machine "
            "the sampler mostly gets a core when the worker blocks, so they overstate the wait "
            "(raw shares: `latest.json`, `profile.raw_shares`)." % (
                ", divided between the queue's own calls and the task's `INCR` by their "
                "socket samples" if drain_counter(report) == "redis" else
                ", all the queue's own (the task body sends no Redis command; its counter's two "
                "system calls, about 1 µs, are in the system time)",
                fmt_int(samples.get("socket")), fmt_int(samples.get("worker_thread")),
                fmt_int(samples.get("python_idle_pass")), fmt_int(samples.get("python_gil_pass"))))
        if (samples.get("python") or 0) < 300:
            lines.append("")
            lines.append("Only %s Python samples: the split of the Python time is rough." %
                         fmt_int(samples.get("python")))
    else:
        lines.append(
            "How the split is made: the totals come from the kernel's accounting of the worker "
            "thread during the drain without a profiler (`/proc/<pid>/task/<tid>/schedstat`, "
            "`stat`); "
            "blocked plus system time is counted as Redis round trips, and user time is divided "
            "among the Python rows by cProfile's self times.")
    lines.append("")
    svgs = prof.get("svg_files") or {}
    links = []
    for tag, what in (("wall", "all samples, waits included (raw, uncalibrated shares)"),
                      ("gil", "Python only (`--gil` samples)")):
        path = svgs.get(tag)
        if path and os.path.exists(path):
            links.append("[%s](%s): %s" % (os.path.basename(path), md_rel(path, md_path), what))
    if links:
        lines.append("Flame graphs of the worker thread (root at the top; hover a box for its "
                     "samples and share): " + "; ".join(links) + ".")
        lines.append("")
    return lines


def _verdict(ok):
    return "—" if ok is None else ("**yes**" if ok else "**no**")


def targets_rows(report):
    """One row per issue #6 target for rpqueue (this repo): (target, measured,
    wanted, met) where met is True, False or None (not measured or not judged)."""
    peers = report.get("peers") or {}
    newp = peers.get("rpqueue_new") or {}
    new = newp.get("median") or {}
    ratio = newp.get("ratio") or {}
    partial = newp.get("partial") or {}
    cfg = report.get("config") or {}
    c = ceiling_figures(report)
    not_run = "not measured in this run"
    rows = []

    def short(err):
        return (err or "?").splitlines()[0][:120].replace("|", "\\|")

    def missing(key):
        errs = newp.get("phase_errors") or {}
        for phase in METRIC_PHASE.get(key, ()):
            if phase in errs:
                return "failed: " + short(errs[phase])
        if newp and not newp.get("median"):
            return "failed: " + short(newp.get("error"))
        return not_run

    bl = report.get("backlog") or {}
    blnew = bl.get("rpqueue_new")

    def bl_missing():
        if not bl:
            return not_run + " (`--backlog` or `--full`)"
        if blnew is None:
            return not_run + " (rpqueue_new not in `--backlog-peers`)"
        err = blnew.get("error") or next((r.get("error") for r in blnew["sizes"].values()
                                          if r.get("error")), None)
        if err:
            return "failed: " + short(err)
        return not_run + " (needs two backlog sizes)"

    def vs_base(key):
        r = ratio.get(key)
        return "" if r is None else " (%s× the original)" % ("%.2f" % r)

    ex = new.get("enqueue_single")
    pr = newp.get("paired")
    if pr:
        rows.append(("Single `execute()` vs the Python round-trip ceiling: redis-py + hiredis, one "
                     "`EVALSHA` of a trivial script per round trip on one held connection, "
                     "interleaved with blocks of `execute()` in the producer (**judged**)",
                     "**%.0f%%** (%s%d rounds%s; `execute()` %s/s vs `EVALSHA` %s/s)" % (
                         100 * pr["ratio"], "median of %d runs of " % pr["runs"]
                         if pr["runs"] > 1 else "median of ", pr["rounds"] // pr["runs"],
                         "" if pr["runs"] < 2 else " each, runs %.0f–%.0f%%" % (
                             100 * pr["min"], 100 * pr["max"]),
                         fmt_int(pr["enqueue_rps"]), fmt_int(pr["evalsha_rps"])),
                     "≥ 80%", pr["ratio"] >= 0.8))
    if ex and c["evalsha"]:
        rows.append(("Single `execute()` (phase 1) vs the same ceiling measured on its own "
                     "(`pyceiling.py`, right before)" + ("" if pr else " (**judged**)"),
                     "%s/s = %s%s%s of %s/s" % (fmt_int(ex), "" if pr else "**",
                                                pct(ex, c["evalsha"]), "" if pr else "**",
                                                fmt_int(c["evalsha"])),
                     "80%, not judged" if pr else "≥ 80%",
                     None if pr else ex >= 0.8 * c["evalsha"]))
    elif not pr:
        rows.append(("Single `execute()` vs the Python round-trip ceiling (redis-py EVALSHA, "
                     "one held connection; **judged**)",
                     missing("enqueue_single") if not ex
                     else "%s/s; the EVALSHA ceiling was %s" % (fmt_int(ex), not_run),
                     "≥ 80%", None))
    if ex and c["rb"]:
        rows.append(("Single `execute()` vs redis-benchmark's PING (C client), for reference",
                     "%s/s = %s of %s/s" % (fmt_int(ex), pct(ex, c["rb"]), fmt_int(c["rb"])),
                     "80%, not judged", None))
    tasks = cfg.get("tasks")
    b = new.get("enqueue_batch")
    rows.append(("Batch enqueue: `Task.execute_many` of %s no-op calls, one call" % fmt_int(tasks),
                 missing("enqueue_batch") if b is None else "%s/s" % fmt_int(b), "≥ 150,000/s",
                 None if b is None else b >= 150_000))
    d1 = new.get("drain_1")
    rows.append(("Drain, 1 worker process (1 thread), no-op tasks" + (
                     "" if drain_counter(report) == "local"
                     else " (each task one `INCR` round trip: `--drain-counter redis`)"),
                 missing("drain_1") if d1 is None else "%s/s%s%s" % (
                     fmt_int(d1), " †" if partial.get("drain_1") else "", vs_base("drain_1")),
                 "≥ 10,000/s", None if d1 is None else d1 >= 10_000))
    for key, label, lim in (("latency_p50_ms", "p50", 0.3), ("latency_p99_ms", "p99", 1.0)):
        v = new.get(key)
        rows.append(("Pickup latency %s (enqueue to start, idle worker)" % label,
                     missing(key) if v is None else "%s ms" % fmt_num(v, False),
                     "≤ %g ms" % lim, None if v is None else v <= lim))
    ratios = backlog_ratios(report)
    r = (ratios or {}).get("peers", {}).get("rpqueue_new")
    for key, label in (("enqueue_single", "Enqueue (single calls)"),
                       ("drain_1", "Drain (1 process)")):
        what = "%s with 1M queued, relative to 10k queued" % label
        if not r or r.get(key) is None:
            rows.append((what, bl_missing(), "≥ 0.80", None))
            continue
        lo, hi = ratios["sizes"]
        fill = ((bl["rpqueue_new"]["sizes"].get(str(hi)) or {}).get("fill") or {})
        at = "at %s vs %s queued" % (fmt_int(fill.get("filled") if fill.get("capped") else hi),
                                    fmt_int(lo))
        judged = lo == 10_000 and hi >= 1_000_000 and not fill.get("capped")
        rows.append((what, "%.2f (%s)%s" % (r[key], at, "" if judged else
                                            ": not the issue's sizes, not judged"),
                     "≥ 0.80", (r[key] >= 0.8) if judged else None))
    # judged at the largest backlog both have (fixed overheads weigh least
    # there); every size is shown
    cmp, ok = [], None
    if blnew and BASELINE in bl:
        for size, res in sorted(blnew["sizes"].items(), key=lambda kv: int(kv[0])):
            m = (res.get("memory") or {}).get("bytes_per_task")
            base = ((bl[BASELINE]["sizes"].get(size) or {}).get("memory") or {}).get("bytes_per_task")
            if m is not None and base:
                cmp.append("%s queued: %.0f vs %.0f B (%.2f×)" % (fmt_int(int(size)), m, base,
                                                                 m / base))
                ok = m <= base
    if cmp:
        mem_cell = "; ".join(cmp) + ("; judged at the largest" if len(cmp) > 1 else "")
    elif blnew and BASELINE not in bl:
        mem_cell = not_run + " (the original not in `--backlog-peers`)"
    elif blnew and not any((x.get("memory") or {}).get("bytes_per_task") is not None
                           for x in blnew["sizes"].values()):
        mem_cell = bl_missing()
    elif blnew:
        mem_cell = "the original's backlog run failed: " + short(bl[BASELINE].get("error"))
    else:
        mem_cell = bl_missing()
    rows.append(("Redis memory per queued no-op task, vs the original rpqueue 0.33.7",
                 mem_cell, "≤ the original's", ok))
    d2 = new.get("drain_2")
    rows.append(("Drain, 2 worker processes vs 1",
                 missing("drain_2" if d1 else "drain_1") if not (d1 and d2)
                 else "%s / %s = %.2f×%s" % (
                     fmt_int(d2), fmt_int(d1), d2 / d1,
                     " †" if partial.get("drain_1") or partial.get("drain_2") else ""),
                 "≥ 1.8×", None if not (d1 and d2) else d2 >= 1.8 * d1))
    return rows


def targets_lines(report):
    """The issue #6 targets, one row each, from this run's figures."""
    if "rpqueue_new" not in (report.get("peers") or {}):
        return []
    cfg = report.get("config") or {}
    c = ceiling_figures(report)
    lines = ["## Issue #6 targets", ""]
    lines.append("`rpqueue (this repo)` in this run (%s). Every ratio is taken within the run, "
                 "on this machine." % (
                     "a quick smoke run: not a measurement" if cfg.get("quick")
                     else "medians of %d repeats" % cfg.get("repeat", 1)))
    lines.append("")
    lines.append("| target | measured | wanted | met |")
    lines.append("| --- | --- | --- | :---: |")
    for what, measured, wanted, ok in targets_rows(report):
        lines.append("| %s | %s | %s | %s |" % (what, measured, wanted, _verdict(ok)))
    lines.append("")
    gap = ""
    if c["rb"] and c["conn"]:
        gap = (" (In this run redis-py, doing nothing but `PING` on a held connection, reached "
               "%s of redis-benchmark's rate.)" % pct(c["conn"], c["rb"]))
    lines.append(
        "**Which ceiling is judged.** Issue #6 asks for a single `execute()` of at least 80%% of "
        "\"the one-client round-trip ceiling measured in the same run\". Two such ceilings are "
        "measured (\"Round-trip ceilings\" above). redis-benchmark is a C client sending `PING`: "
        "no Python runs in it, so a ratio to it mixes what rpqueue does with what any Python "
        "client costs per round trip (redis-py's command packing and reply handling, the "
        "interpreter), which no queue library can avoid and which moves with the machine "
        "differently from the C client.%s The ceiling a Python library can be held to is what a "
        "Python client reaches with the same kind of call: one `EVALSHA` per round trip, "
        "redis-py with hiredis, on one connection the thread holds. That is exactly how "
        "`execute()` sends a task (one `EVALSHA` of the enqueue script on the thread's own "
        "connection), so the ratio to it measures what rpqueue adds per task: the id, the JSON "
        "message, packing its arguments, and the script's work in Redis. That ratio is the one "
        "judged; the redis-benchmark ratio is given for reference." % gap)
    lines.append("")
    lines.append(
        "**Which measurement of it.** The `EVALSHA` ceiling is measured twice: on its own "
        "(`pyceiling.py`, right before our rpqueue's run) and interleaved with `execute()` in "
        "the producer process, in alternating blocks. The interleaved ratio is judged. On a "
        "small VM a round trip with one request in flight is several times faster when the "
        "client and redis-server happen to share a core than when they do not (a cross-core "
        "wake-up each way), and the scheduler decides which, so two figures taken a few "
        "seconds apart can differ by that factor; blocks alternating in one process share it.")
    lines.append("")
    lines.append("The issue's conditions on the drain (priority order with a bounded, documented "
                 "wait; no lost or doubled task when a worker that took several dies) are "
                 "checked by the test suite, not here; this benchmark only checks that every "
                 "drain ran each task exactly once (`executed` in latest.json). † a drain cut "
                 "off at the time cap.")
    if (report.get("profile") or {}).get("profile"):
        lines.append("")
        lines.append("Hot paths: see \"Where a task's time goes\" below.")
    lines.append("")
    return lines


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
    lines.append("- the task of the drain phases: %s" % COUNTER_TEXT[drain_counter(report)])
    lines.append("")
    rb = report.get("redis_benchmark") or {}
    lines.append("## Round-trip ceilings")
    lines.append("")
    if rb:
        mb = rb.get("PING_MBULK") or next(v for k, v in rb.items() if not k.startswith("_"))
        runs = [r.get("PING_MBULK") for r in report.get("redis_benchmark_runs_rps", [])
                if r.get("PING_MBULK")]
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
    lines += python_ceiling_lines(report)
    lines += targets_lines(report)
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
        for p in report["peers"].values():
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
        for _, p in failed:
            lines.append("- **%s**: %s" % (p["label"], (p.get("error") or "no figures").splitlines()[0]))
        lines.append("")
    if "rpqueue_new" in report["peers"]:
        rs = report.get("repo") or {}
        lines.append("`rpqueue (this repo)` was measured from the working tree at commit %s%s." % (
            rs.get("commit", "?"), " with uncommitted changes in src/" if rs.get("src_dirty") else ""))
        lines.append("")
    lines.append("### Notes per system")
    lines.append("")
    for p in report["peers"].values():
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
        lines.append("![drain rates](%s)" % md_rel(os.path.join(REPO, report["plot"]), path))
        lines.append("")
    lines += backlog_lines(report)
    lines += profile_lines(report, path)
    text = "\n".join(lines).rstrip("\n") + "\n"
    # sections other scripts keep in this file (async_bench.py's asyncio
    # section, ...) are carried over unchanged, after ours
    kept = marked_sections(path)
    if kept:
        text += "\n" + "\n\n".join(kept) + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return [name for name, _ in (m.groups() for m in map(MARKED.match, kept))]


# a section another script owns: <!-- NAME:start --> ... <!-- NAME:end -->
MARKED = re.compile(r"<!-- ([A-Za-z0-9_.-]+):start -->(.*?)<!-- \1:end -->", re.S)


def marked_sections(path):
    """Every marked section of the file at `path`, in file order, verbatim."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    return [m.group(0) for m in MARKED.finditer(text)]


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
    for p in peers.values():
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
    ap.add_argument("--markdown", default=os.path.join(REPO, "BENCHMARKS.md"),
                    help="the report to write (default BENCHMARKS.md); its sections between "
                         "<!-- NAME:start --> and <!-- NAME:end --> markers (async_bench.py's) "
                         "are kept as they are")
    ap.add_argument("--render-from", default=None, metavar="JSON",
                    help="measure nothing: write --markdown from a saved latest.json")
    ap.add_argument("--results-dir", default=RESULTS,
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
        wanted = []
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


def _peer_list(ap, text):
    out = []
    for tok in [t.strip() for t in text.split(",") if t.strip()]:
        if tok not in PEERS:
            ap.error("unknown peer %r (known: %s)" % (tok, ", ".join(PEERS)))
        if tok not in out:
            out.append(tok)
    return out


def main(argv=None):
    args = parse_args(argv)
    if args.render_from:
        return render_only(args)
    cmdline = shlex.join(["python3", os.path.relpath(os.path.abspath(sys.argv[0]), REPO)]
                         + (sys.argv[1:] if argv is None else argv))
    t_start = time.time()
    os.makedirs(WORK, exist_ok=True)
    os.makedirs(args.results_dir, exist_ok=True)

    def on_term(signum, frame):
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

    runs = {pid: [] for pid in args.peer_ids}
    dead = {}
    for pid in args.peer_ids:
        err = setup.get(PEERS[pid]["venv"])
        if err:
            dead[pid] = "venv setup failed: " + err
            runs[pid].append({"ok": False, "error": dead[pid]})

    server = RedisServer()
    bench_runs, bench_detail = [], []
    py_ceiling_runs, py_ceiling_error = [], None
    backlog, profile = None, None
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
            # the Python ceiling runs right before our rpqueue's own run (the
            # ratio of its execute() to it is a target), else here
            py_ceiling_due = args.py_ceiling_seconds > 0
            if py_ceiling_due and (CEILING_PEER not in args.peer_ids or CEILING_PEER in dead):
                py_ceiling_error = measure_py_ceiling(server, args, k, py_ceiling_runs) or py_ceiling_error
                py_ceiling_due = False
            for pid in args.peer_ids:
                if pid in dead:
                    continue
                if not server.alive():
                    log("redis-server died; restarting")
                    server.stop()
                    server.start()
                redis_cmd(server.port, "FLUSHALL")
                if pid == CEILING_PEER and py_ceiling_due:
                    py_ceiling_error = (measure_py_ceiling(server, args, k, py_ceiling_runs)
                                        or py_ceiling_error)
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
        if args.backlog:
            backlog = run_backlog_phase(server, args, setup)
        if args.profile:
            if not server.alive():
                server.stop()
                server.start()
            profile = run_profile_phase(server, args, setup)
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
    py_ceiling = {"runs": py_ceiling_runs, "seconds": args.py_ceiling_seconds,
                  "error": py_ceiling_error}
    for key in PY_CEILING_KEYS:
        vals = [r[key] for r in py_ceiling_runs if r.get(key)]
        py_ceiling[key] = statistics.median(vals) if vals else None
    report = {
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
        "redis_benchmark": rb_med,
        "redis_benchmark_runs": bench_detail,
        "redis_benchmark_runs_rps": bench_runs,
        "python_ceiling": py_ceiling,
        "backlog": backlog,
        "profile": profile,
        "loadavg_1min_before_each_peer_run": loads,
        "peers": peers,
        "baseline": BASELINE,
        "plot": None,
        "runtime_s": None,
    }
    json_path = os.path.join(args.results_dir, "latest.json")
    png_path = os.path.join(args.results_dir, "drain.png")
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
    kept = write_markdown(args.markdown, report)
    log("wrote %s%s, %s%s (%.0fs)" % (os.path.relpath(args.markdown, REPO),
                                      " (kept its marked sections: %s)" % ", ".join(kept)
                                      if kept else "",
                                      os.path.relpath(json_path, REPO),
                                      ", " + report["plot"] if report["plot"] else "",
                                      report["runtime_s"]))
    return 0


def render_only(args):
    """--render-from: write the markdown from a saved results JSON, measuring
    nothing (the text and tables as this version of the harness writes them)."""
    with open(args.render_from, encoding="utf-8") as f:
        report = json.load(f)
    kept = write_markdown(args.markdown, report)
    log("wrote %s from %s%s" % (args.markdown, args.render_from,
                                " (kept its marked sections: %s)" % ", ".join(kept)
                                if kept else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
