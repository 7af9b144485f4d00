"""Shared measurement protocol for every peer adapter.

This module is imported twice in each benchmark:

* by the adapter (the producer side), which calls :func:`main` with a
  peer-specific :class:`Peer` object; and
* by the peer's ``bench_tasks`` module inside the worker processes, whose
  task bodies call :func:`task_done` (drain phases) or :func:`task_stamp`
  (latency phase).

It only needs the standard library and ``redis`` (redis-py), which every
peer venv has.  Keeping the task bodies here guarantees that every peer
executes byte-for-byte the same work per task.

The drain task counts its executions with one of two counters
(``--drain-counter``):

``local`` (default)  no Redis command per task.  Each execution appends one
                     byte to ``<path>.count`` on tmpfs (``/dev/shm``), opened
                     with O_APPEND by each thread of each process; the file
                     offset right after that write is the execution's number
                     (the kernel appends atomically), exact across threads,
                     processes and forks.  Two system calls, a few µs.  The
                     executions numbered 1 and total write their time.time()
                     into ``<path>.times`` (offsets 0 and 8); the one numbered
                     total then pushes to bench:finished.
``redis``            one INCR round trip per task (bench:done, below).

Keys used (all under ``bench:``, in the same Redis database as the queues;
the database is flushed between phases):

``bench:done``      INCR'd once per executed no-op task (redis counter)
``bench:t_first``   time.time() taken at the start of the task that got INCR == 1
``bench:t_last``    time.time() taken at the end of the task that got INCR == total
``bench:finished``  list the last task pushes to, so the producer can BLPOP
                    instead of polling (both counters)
``bench:lat``       list of time.time() values recorded at the start of each
                    latency "stamp" task
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import redis

K_DONE = "bench:done"
K_FIRST = "bench:t_first"
K_LAST = "bench:t_last"
K_FINISHED = "bench:finished"
K_LAT = "bench:lat"

# backlog fills are sent in chunks of this many tasks
FILL_CHUNK = 10000

ENV_URL = "BENCH_REDIS_URL"
ENV_TOTAL = "BENCH_TOTAL"
# path prefix of the local counter's files; unset: the task INCRs bench:done
ENV_COUNTER = "BENCH_COUNTER"

COUNTERS = ("local", "redis")
_TIME = struct.Struct("d")

# --------------------------------------------------------------------------
# worker side: the task bodies
# --------------------------------------------------------------------------

_conn = None
_conn_pid = None
_total = None
# per thread: its own descriptors of the local counter's files (a descriptor
# inherited through fork shares its file offset with the parent's), fd -1
# when no local counter is configured
_tls = threading.local()


def _after_fork():
    global _tls
    _tls = threading.local()


os.register_at_fork(after_in_child=_after_fork)


def _redis():
    """One plain redis-py connection per worker process (fork-safe)."""
    global _conn, _conn_pid
    pid = os.getpid()
    if _conn is None or _conn_pid != pid:
        _conn = redis.Redis.from_url(os.environ[ENV_URL])
        _conn_pid = pid
    return _conn


def _open_local():
    global _total
    _total = int(os.environ.get(ENV_TOTAL, "0"))
    path = os.environ.get(ENV_COUNTER)
    if not path:
        _tls.fd = -1
        return -1
    _tls.times = os.open(path + ".times", os.O_WRONLY)
    _tls.fd = os.open(path + ".count", os.O_WRONLY | os.O_APPEND)
    return _tls.fd


def task_done():
    """Body of the no-op task used for drain measurements.

    Local counter (the default): no Redis command; two system calls on a
    tmpfs file. The last task pushes to bench:finished after its end time
    is written. Redis counter: exactly one Redis round trip per task (the
    INCR), plus one SET for the first and last task of the run.
    """
    started = time.time()
    fd = getattr(_tls, "fd", None)
    if fd is None:
        fd = _open_local()
    if fd < 0:
        _task_done_redis(started)
        return
    os.write(fd, b"\0")
    n = os.lseek(fd, 0, os.SEEK_CUR)  # O_APPEND: where this very write ended
    if n == 1:
        os.pwrite(_tls.times, _TIME.pack(started), 0)
    if n == _total:
        os.pwrite(_tls.times, _TIME.pack(time.time()), 8)
        _redis().rpush(K_FINISHED, n)


def _task_done_redis(started):
    r = _redis()
    n = r.incr(K_DONE)
    if n == 1:
        r.set(K_FIRST, repr(started))
    if n == _total:
        r.set(K_LAST, repr(time.time()))
        r.rpush(K_FINISHED, n)


def task_stamp():
    """Body of the task used for pickup latency: record when it started."""
    started = time.time()
    _redis().rpush(K_LAT, repr(started))


# --------------------------------------------------------------------------
# producer side
# --------------------------------------------------------------------------


def log(*args):
    print("[%s %.3f]" % (os.path.basename(sys.argv[0]), time.time()), *args,
          file=sys.stderr, flush=True)


class Peer:
    """What an adapter provides.  Subclasses override the methods below."""

    name = "?"
    version = "?"
    batch_api = None  # a short description of the batch API, or None
    notes: list = []

    def __init__(self, url, args):
        self.url = url
        self.args = args

    # producer calls -----------------------------------------------------
    def setup(self):
        pass

    def enqueue_noop(self):
        raise NotImplementedError

    def enqueue_noops(self, n):
        """n single enqueue calls; override when a loop needs special care
        (asyncio)."""
        f = self.enqueue_noop
        for _ in range(n):
            f()

    def batch_input(self, n):
        """The argument list the batch API takes for n no-op calls, built
        before the timer of the batch phase starts (None: nothing to build)."""
        return None

    def enqueue_batch(self, n, prepared=None):
        """Enqueue n no-op tasks through the peer's batch API, in one call;
        `prepared` is what batch_input(n) returned, or None (build it)."""
        raise NotImplementedError

    def enqueue_stamp(self):
        raise NotImplementedError

    # backlog phase: the fastest way this system has to queue many no-ops
    fill_api = None  # description; None: the batch API if any, else single calls

    def fill(self, n):
        """Queue n no-op tasks as fast as the system allows (backlog set-up,
        not a reported rate). Called in chunks of at most 10,000."""
        if self.batch_api:
            self.enqueue_batch(n)
        else:
            self.enqueue_noops(n)

    def describe_fill(self):
        return self.fill_api or self.batch_api or "single calls"

    # profile phase: a (file suffix, function name) that only the worker
    # thread's stacks contain, e.g. ("rpqueue/worker/loop.py", "run")
    profile_marker = None

    # workers -------------------------------------------------------------
    def worker_commands(self, processes):
        """List of argv lists, one per OS process to launch, so that in total
        `processes` worker processes run, each at concurrency 1."""
        raise NotImplementedError

    def worker_env(self):
        return {}

    def close(self):
        pass


def _pyspy_version(exe):
    try:
        return subprocess.run([exe, "--version"], capture_output=True, text=True,
                              timeout=30).stdout.split()[-1]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


def _cpu_seconds(pid):
    """User + system CPU seconds of a live process, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


class RedisCounter:
    """The drain count as the task keeps it with --drain-counter redis."""

    name = "redis"
    description = "one INCR round trip per task"

    def __init__(self, r):
        self.r = r

    def env(self):
        return {}

    def reset(self):
        self.r.delete(K_DONE, K_FIRST, K_LAST, K_FINISHED)

    def done(self):
        return int(self.r.get(K_DONE) or 0)

    def _time(self, key):
        v = self.r.get(key)
        return None if v is None else float(v)

    def first(self):
        return self._time(K_FIRST)

    def last(self):
        return self._time(K_LAST)

    def close(self):
        pass


class LocalCounter:
    """The drain count as the task keeps it with --drain-counter local: the
    size of <path>.count, and the two times in <path>.times (0.0: not yet)."""

    name = "local"
    description = ("no Redis command per task: one byte appended to a tmpfs file "
                   "(O_APPEND write + lseek)")

    def __init__(self, r, workdir):
        self.r = r
        shm = "/dev/shm"
        where = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else workdir
        fd, self.path = tempfile.mkstemp(prefix="bench-counter-", dir=where)
        os.close(fd)
        os.unlink(self.path)  # only the two files below are used

    def env(self):
        return {ENV_COUNTER: self.path}

    def reset(self):
        """Only while no worker runs: a worker keeps its descriptors open."""
        self.r.delete(K_FINISHED)
        with open(self.path + ".count", "wb"):
            pass
        with open(self.path + ".times", "wb") as f:
            f.write(bytes(16))

    def done(self):
        try:
            return os.stat(self.path + ".count").st_size
        except FileNotFoundError:
            return 0

    def _time(self, offset):
        try:
            with open(self.path + ".times", "rb") as f:
                f.seek(offset)
                v = _TIME.unpack(f.read(8))[0]
        except (OSError, struct.error):
            return None
        return v or None

    def first(self):
        return self._time(0)

    def last(self):
        return self._time(8)

    def close(self):
        for ext in (".count", ".times"):
            try:
                os.unlink(self.path + ext)
            except FileNotFoundError:
                pass


class Workers:
    """Launches worker commands in their own process groups, records the
    groups in a pid file (so the harness can clean up after a crash), and
    stops them."""

    def __init__(self, peer, processes, total, workdir, tag, commands=None, counter=None):
        self.peer = peer
        self.procs = []
        self.logs = []
        env = dict(os.environ)
        env[ENV_URL] = peer.url
        env[ENV_TOTAL] = str(total)
        env["PYTHONUNBUFFERED"] = "1"
        here = os.path.dirname(os.path.abspath(__file__))
        peer_dir = os.path.dirname(os.path.abspath(sys.argv[0]))
        env["PYTHONPATH"] = os.pathsep.join(
            [peer_dir, here] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env.update(peer.worker_env())
        env.pop(ENV_COUNTER, None)
        if counter is not None:
            env.update(counter.env())
        self.pidfile = os.path.join(workdir, "workers.pids")
        for i, argv in enumerate(commands or peer.worker_commands(processes)):
            logpath = os.path.join(workdir, "worker-%s-%d.log" % (tag, i))
            logf = open(logpath, "wb")
            self.logs.append(logpath)
            p = subprocess.Popen(argv, cwd=peer_dir, env=env, stdin=subprocess.DEVNULL,
                                 stdout=logf, stderr=subprocess.STDOUT,
                                 start_new_session=True)
            logf.close()
            self.procs.append(p)
            with open(self.pidfile, "a") as f:
                f.write("%d\n" % p.pid)
        self.started = time.time()

    def alive(self):
        return [p for p in self.procs if p.poll() is None]

    def stop(self, grace=8.0):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + grace
        for p in self.procs:
            try:
                p.wait(max(0.05, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
        # whatever is left in the groups (stuck leaders, orphaned children)
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.wait(2)
            except subprocess.TimeoutExpired:
                pass

    def tail(self, lines=15):
        out = []
        for path in self.logs:
            try:
                with open(path, "rb") as f:
                    data = f.read().decode("utf-8", "replace").splitlines()
            except OSError:
                continue
            out.append("--- %s\n%s" % (os.path.basename(path), "\n".join(data[-lines:])))
        return "\n".join(out)


def _percentile(sorted_values, q):
    """Nearest-rank percentile (q in 0..100) of an already sorted list."""
    if not sorted_values:
        return None
    k = math.ceil(q / 100.0 * len(sorted_values)) - 1
    return sorted_values[max(0, min(len(sorted_values) - 1, k))]


class Run:
    def __init__(self, peer, args):
        self.peer = peer
        self.args = args
        self.r = redis.Redis.from_url(args.url)
        self.result = {
            "peer": args.peer_id or peer.name,
            "system": peer.name,
            "version": peer.version,
            "tasks": args.tasks,
            "batch_api": peer.batch_api,
            "notes": list(peer.notes),
            "errors": [],
        }
        self.workdir = args.workdir
        os.makedirs(self.workdir, exist_ok=True)
        self.counter = (LocalCounter(self.r, self.workdir) if args.drain_counter == "local"
                        else RedisCounter(self.r))
        self.result["drain_counter"] = {"name": self.counter.name,
                                        "description": self.counter.description}

    # --- helpers -----------------------------------------------------------
    def flush(self):
        self.r.flushdb()

    def timed_enqueue(self, fn, n):
        t0 = time.perf_counter()
        fn(n)
        dt = time.perf_counter() - t0
        return n / dt, dt

    def drain(self, processes, tag, n=None, more_queued=False):
        """Start `processes` workers on the pre-filled queue and wait until
        n (default --tasks) tasks ran (or the phase timeout).  Returns (rate,
        info, workers).  The workers are left running so the caller may
        reuse them.  more_queued: the queue holds more than n tasks (backlog
        phase), so executions past n are expected, not duplicates."""
        n = self.args.tasks if n is None else n
        c = self.counter
        c.reset()
        w = Workers(self.peer, processes, n, self.workdir, tag, counter=c)
        deadline = w.started + self.args.phase_timeout
        finished = False
        try:
            while time.time() < deadline:
                got = self.r.blpop([K_FINISHED], timeout=1)
                if got:
                    finished = True
                    break
                if not w.alive():
                    raise RuntimeError("worker exited early\n" + w.tail())
        except BaseException:
            w.stop()
            raise
        if not finished and c.last() is not None:
            finished = True  # the last task ended between our last BLPOP and the deadline
        now = time.time()
        done_at_cut = c.done()
        if not more_queued:
            time.sleep(0.3)  # let duplicates (if any) show up before we count
        done = c.done()
        first = c.first()
        info = {"processes": processes, "complete": finished, "executed": done,
                "startup_s": None}
        if first is None:
            w.stop()
            raise RuntimeError("no task ran within %ss\n%s" % (self.args.phase_timeout, w.tail()))
        info["startup_s"] = round(first - w.started, 3)
        if finished:
            last = c.last()
            elapsed = last - first
            rate = n / elapsed
        else:
            # partial: rate over what ran so far (steady state estimate)
            elapsed = now - first
            rate = done_at_cut / elapsed if elapsed > 0 else None
            done = done_at_cut
        info["elapsed_s"] = round(elapsed, 4)
        if more_queued:
            info["executed"] = n if finished else done
        elif finished and done != n:
            info["duplicates"] = done - n
        return rate, info, w

    def latency(self, w):
        """Pickup latency with an idle worker: one task at a time."""
        samples = []
        self.r.delete(K_LAT)
        deadline = time.time() + self.args.latency_timeout
        warmup = 5
        i = 0
        rnd = random.Random(12345)
        while len(samples) < self.args.latency_samples and time.time() < deadline:
            # small random gap so the enqueue does not lock onto a poller's phase
            time.sleep(rnd.uniform(0.002, 0.010))
            t0 = time.time()
            self.peer.enqueue_stamp()
            got = None
            wait_until = time.time() + 10
            while got is None and time.time() < wait_until:
                got = self.r.blpop([K_LAT], timeout=1)
                if got is None and not w.alive():
                    raise RuntimeError("worker died during latency phase\n" + w.tail())
            if got is None:
                raise RuntimeError("stamp task did not run within 10s\n" + w.tail())
            started = float(got[1])
            i += 1
            if i > warmup:
                samples.append(started - t0)
        samples.sort()
        return {
            "samples": len(samples),
            "p50_ms": round(_percentile(samples, 50) * 1000, 3) if samples else None,
            "p99_ms": round(_percentile(samples, 99) * 1000, 3) if samples else None,
            "mean_ms": round(statistics.fmean(samples) * 1000, 3) if samples else None,
            "max_ms": round(samples[-1] * 1000, 3) if samples else None,
            "complete": len(samples) >= self.args.latency_samples,
        }

    def paired_ceiling(self):
        """Single enqueue calls and the Python round-trip ceiling (EVALSHA of a
        trivial script on one held redis-py connection, one per round trip),
        measured in alternating blocks in this process, so that whatever
        slows round trips (other load; on a small VM, whether this process
        and redis-server share a core) weighs on both alike. Each round: one
        block of each, in alternating order; the ratio is per round."""
        a, p = self.args, self.peer
        block = max(100, a.tasks // 20)
        r = redis.Redis.from_url(a.url)
        sha = r.script_load("return 1")
        conn = r.connection_pool.get_connection()

        def ceiling(k):
            for _ in range(k):
                conn.send_command("EVALSHA", sha, 0)
                conn.read_response()

        try:
            ceiling(200)
            p.enqueue_noops(100)
            enq, ceil, ratios = [], [], []
            for i in range(a.paired_rounds):
                order = ((ceil, ceiling), (enq, p.enqueue_noops))
                for out, fn in (order if i % 2 == 0 else order[::-1]):
                    t0 = time.perf_counter()
                    fn(block)
                    out.append(block / (time.perf_counter() - t0))
                ratios.append(enq[-1] / ceil[-1])
        finally:
            r.connection_pool.release(conn)
            r.close()
        out = {"rounds": a.paired_rounds, "block": block,
               "enqueue_rps": statistics.median(enq), "evalsha_rps": statistics.median(ceil),
               "ratio": statistics.median(ratios), "ratios": [round(x, 4) for x in ratios],
               "enqueue_rps_all": [round(x) for x in enq],
               "evalsha_rps_all": [round(x) for x in ceil]}
        self.result["paired_ceiling"] = out
        log("paired ceiling: enqueue %.0f/s, EVALSHA %.0f/s, ratio %.2f (%.2f-%.2f)" % (
            out["enqueue_rps"], out["evalsha_rps"], out["ratio"], min(ratios), max(ratios)))

    # --- the protocol ------------------------------------------------------
    def _phase(self, name, fn, flush=True):
        """Run one phase; a failing phase is recorded and the next one runs."""
        try:
            fn()
            return True
        except Exception as exc:
            msg = "%s: %s" % (type(exc).__name__, exc)
            log("phase %s failed: %s" % (name, msg))
            self.result["errors"].append({"phase": name, "error": msg[:2000]})
            if flush:
                try:
                    self.flush()
                except Exception:
                    pass
            return False

    def run(self):
        a = self.args
        p = self.peer
        res = self.result
        n = a.tasks
        self.flush()
        p.setup()

        # 1. single enqueue (after a small warm-up that is thrown away)
        def enqueue_single():
            p.enqueue_noops(100)
            self.flush()
            rate, dt = self.timed_enqueue(p.enqueue_noops, n)
            res["enqueue_single"] = rate
            log("enqueue single: %.0f/s (%.2fs)" % (rate, dt))

        # 0. single enqueue against the Python round-trip ceiling, interleaved
        # (its tasks are flushed: phase 1 fills the queue that phase 2 drains)
        if a.paired_rounds > 0:
            self._phase("paired_ceiling", self.paired_ceiling)
            self.flush()

        if not self._phase("enqueue_single", enqueue_single):
            raise RuntimeError("single enqueue failed: " + res["errors"][-1]["error"])

        # 2. drain with 1 worker process, then reuse the idle worker for latency
        state = {}

        def drain_1():
            rate, info, state["w"] = self.drain(1, "drain1")
            res["drain_1"] = rate
            res["drain_1_info"] = info
            log("drain 1 proc: %.0f/s %s" % (rate or 0, info))

        def latency():
            w = state.get("w")
            if w is None or not res.get("drain_1_info", {}).get("complete"):
                # no worker, or a backlog is left: a fresh idle worker
                if w is not None:
                    w.stop()
                self.flush()
                w = state["w"] = Workers(p, 1, n, self.workdir, "latency", counter=self.counter)
            res["latency"] = self.latency(w)
            log("latency: %s" % res["latency"])

        try:
            self._phase("drain_1", drain_1)
            if a.latency_samples > 0:
                self._phase("latency", latency)
        finally:
            if state.get("w") is not None:
                state["w"].stop()
        self.flush()

        # 3. batch enqueue (or single calls to refill), then drain with 2
        def batch():
            # only the batch call is timed: its argument list is built first
            prepared = p.batch_input(n)
            rate, dt = self.timed_enqueue(lambda k: p.enqueue_batch(k, prepared), n)
            res["enqueue_batch"] = rate
            log("enqueue batch: %.0f/s (%.2fs)" % (rate, dt))

        def refill():
            rate, _ = self.timed_enqueue(p.enqueue_noops, n)
            res["enqueue_single_refill"] = rate

        res["enqueue_batch"] = None
        if p.batch_api:
            filled = self._phase("enqueue_batch", batch)
            if not filled:
                self.flush()
                filled = self._phase("refill", refill)
        else:
            filled = self._phase("refill", refill)

        state = {}

        def drain_2():
            rate, info, state["w"] = self.drain(2, "drain2")
            res["drain_2"] = rate
            res["drain_2_info"] = info
            log("drain 2 procs: %.0f/s %s" % (rate or 0, info))

        if filled:
            try:
                self._phase("drain_2", drain_2)
            finally:
                if state.get("w") is not None:
                    state["w"].stop()
        self.flush()

    # --- backlog phase (run.py --backlog) ------------------------------------
    def used_memory(self):
        """used_memory less the memory of normal clients (their query and
        output buffers hold pipelines in flight, not queued tasks)."""
        info = self.r.info("memory")
        return int(info["used_memory"]) - int(info.get("mem_clients_normal", 0)), {
            k: info.get(k) for k in ("used_memory", "mem_clients_normal", "used_memory_dataset",
                                     "used_memory_scripts")}

    def fill(self, n, cap_s=None):
        """Queue n no-ops with the peer's fill API, in chunks; stop early
        after cap_s seconds. Returns (filled, capped, seconds)."""
        filled, capped = 0, False
        t0 = time.perf_counter()
        while filled < n:
            k = min(FILL_CHUNK, n - filled)
            self.peer.fill(k)
            filled += k
            if cap_s is not None and filled < n and time.perf_counter() - t0 > cap_s:
                capped = True
                break
        return filled, capped, time.perf_counter() - t0

    def run_backlog(self):
        """Fill `--backlog-size` no-op tasks, report Redis memory per queued
        task, then (repeated) the single-call enqueue rate of `--backlog-probe`
        more tasks and the 1-process drain rate of the first `--backlog-probe`
        tasks, with the backlog in place."""
        a, p, res = self.args, self.peer, self.result
        size, probe = a.backlog_size, a.backlog_probe
        res.update(mode="backlog", backlog_size=size, probe_tasks=probe,
                   fill_api=p.describe_fill())
        self.flush()
        p.setup()
        # warm-up (connections, script loads, registries), thrown away
        p.fill(100)
        p.enqueue_noops(100)
        self.flush()
        time.sleep(0.2)
        mem0, info0 = self.used_memory()
        filled, capped, fill_s = self.fill(size, a.fill_cap)
        mem1, info1 = self.used_memory()
        res["fill"] = {"requested": size, "filled": filled, "capped": capped,
                       "seconds": round(fill_s, 3), "rate": filled / fill_s if fill_s else None,
                       "cap_s": a.fill_cap}
        res["memory"] = {"before": info0, "after": info1,
                         "bytes_per_task": (mem1 - mem0) / filled if filled else None}
        log("backlog %d: filled %d in %.1fs (%s)%s, %.0f bytes/task" % (
            size, filled, fill_s, p.describe_fill(), " CAPPED" if capped else "",
            res["memory"]["bytes_per_task"] or 0))
        probes = []
        res["probes"] = probes
        for i in range(a.backlog_repeat):
            row = {}
            probes.append(row)

            # called right away, in this iteration: the defaults only bind row and i
            def enqueue(row=row):
                rate, _ = self.timed_enqueue(p.enqueue_noops, probe)
                row["enqueue_single"] = rate

            def drain(row=row, i=i):
                rate, info, w = self.drain(1, "backlog%d-%d" % (size, i), n=probe, more_queued=True)
                w.stop()
                row["drain_1"] = rate
                row["drain_1_info"] = info

            self._phase("backlog_enqueue", enqueue, flush=False)
            self._phase("backlog_drain", drain, flush=False)
            log("backlog %d probe %d: enqueue %.0f/s, drain %.0f/s %s" % (
                size, i + 1, row.get("enqueue_single") or 0, row.get("drain_1") or 0,
                row.get("drain_1_info")))
        for key in ("enqueue_single", "drain_1"):
            vals = [r[key] for r in probes if r.get(key) is not None]
            res[key] = statistics.median(vals) if vals else None
        res["drain_complete"] = all((r.get("drain_1_info") or {}).get("complete", False)
                                    for r in probes if r.get("drain_1") is not None)
        self.flush()

    # --- profile phase (run.py --profile) ------------------------------------
    def _wait_first(self, w, deadline):
        while self.counter.first() is None:
            if not w.alive():
                raise RuntimeError("worker exited early\n" + w.tail())
            if time.time() > deadline:
                raise RuntimeError("no task ran within the time cap\n" + w.tail())
            time.sleep(0.005)

    def _window(self, pid):
        import profiling
        return time.time(), self.counter.done(), profiling.thread_times(pid)

    def run_profile(self):
        """Split our worker thread's time per no-op task into categories
        (see profiling.py), from three drains of `--profile-tasks` tasks by 1
        worker process, each on a freshly filled queue (_profiled_drain):

        * with no profiler: the totals (the worker thread's wall, CPU and
          run-queue time per task, profiling.window_timing), untouched by a
          profiler's own CPU use;
        * py-spy `--idle --nonblocking`: every sample, waits included: the
          flame graph and the split of the socket time between the queue's
          calls and the task's INCR;
        * py-spy `--gil`, over twice as many tasks: only samples holding the
          GIL, i.e. running Python: the split of the Python time and the top
          functions.

        When py-spy is missing or cannot attach, a cProfile drain replaces
        the two py-spy ones (`--profiler auto`)."""
        a, p, res = self.args, self.peer, self.result
        n = a.profile_tasks
        res.update(mode="profile", profile_tasks=n)
        self.flush()
        p.setup()
        p.fill(100)
        self.flush()
        self._plain = self._profiled_drain(n, "plain")
        tried = []
        if a.profiler in ("auto", "py-spy"):
            if a.py_spy and os.path.exists(a.py_spy):
                try:
                    self._profile_pyspy(n)
                    return
                except Exception as exc:
                    tried.append("py-spy failed: %s: %s" % (type(exc).__name__,
                                                            str(exc).splitlines()[0][:300]))
                    log(tried[-1])
                    if a.profiler == "py-spy":
                        raise
            else:
                tried.append("py-spy not installed (%s)" % a.py_spy)
                if a.profiler == "py-spy":
                    raise RuntimeError(tried[-1])
        res["fallback_reason"] = "; ".join(tried) or None
        self._profile_cprofile(n)

    def _refill(self, n):
        """An empty database, then 2n tasks: n for the measured window and up
        to n more drained before it starts (worker start-up, py-spy attach)."""
        self.flush()
        self.fill(2 * n)
        self.counter.reset()

    def _wait_done(self, w, target, deadline):
        """Wait until `target` tasks have run in total. False when the time
        cap passes or the queue ran dry (no progress for 3 s) first."""
        last, last_change = -1, time.time()
        while True:
            done = self.counter.done()
            now = time.time()
            if done >= target:
                return True
            if done != last:
                last, last_change = done, now
            if now > deadline or now - last_change > 3.0:
                return False
            if not w.alive():
                raise RuntimeError("worker exited early\n" + w.tail())
            time.sleep(0.01)

    def _profiled_drain(self, n, tag, flags=None, commands=None):
        """Fill, start 1 worker (with `commands` instead of the peer's, for
        cProfile), attach py-spy with `flags` (None: no py-spy) once the
        first task has run and py-spy says it is sampling, then measure the
        window in which the next n tasks run. The worker is stopped after
        the window with tasks still queued, so it is never idle inside it.
        Returns {timing, drain_rate, complete[, stacks, samples, ...]}."""
        import profiling
        a = self.args
        raw = os.path.join(self.workdir, "profile-%s.raw" % tag)
        if os.path.exists(raw):
            os.unlink(raw)
        self._refill(n)
        # a total that is never reached: no task signals the end here
        w = Workers(self.peer, 1, 10 ** 12, self.workdir, "profile-" + tag, commands=commands,
                    counter=self.counter)
        spy = spy_cpu = None
        splog = os.path.join(self.workdir, "py-spy-%s.log" % tag)
        try:
            deadline = w.started + a.profile_timeout
            self._wait_first(w, deadline)
            pid = w.procs[0].pid
            if flags is not None:
                with open(splog, "wb") as logf:
                    spy = subprocess.Popen(
                        [a.py_spy, "record", "--pid", str(pid), "--rate", str(a.profile_rate),
                         *flags, "--subprocesses", "--format", "raw", "--output", raw],
                        stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                        start_new_session=True)
                with open(w.pidfile, "a") as f:
                    f.write("%d\n" % spy.pid)
                ready_by = min(deadline, time.time() + 20)
                while True:
                    with open(splog, "rb") as f:
                        if b"Sampling process" in f.read():
                            break
                    if spy.poll() is not None or time.time() > ready_by:
                        with open(splog, "rb") as f:
                            text = f.read().decode("utf-8", "replace").strip()
                        raise RuntimeError("py-spy did not start sampling (exit %s): %s" % (
                            spy.poll(), text[-500:]))
                    time.sleep(0.01)
            before = self._window(pid)
            complete = self._wait_done(w, before[1] + n, deadline)
            after = self._window(pid)
            if spy is not None:
                spy_cpu = _cpu_seconds(spy.pid)
                spy.send_signal(signal.SIGINT)
                try:
                    spy.wait(30)
                except subprocess.TimeoutExpired:
                    spy.kill()
                    spy.wait(5)
        finally:
            if spy is not None and spy.poll() is None:
                spy.kill()
            w.stop()
        timing = profiling.window_timing(before, after)
        out = {"timing": timing, "drain_rate": timing["tasks"] / timing["wall_s"],
               "complete": complete}
        if flags is None:
            log("profile pass %s: drain %.0f/s over %d tasks" % (
                tag, out["drain_rate"], timing["tasks"]))
            return out
        with open(splog, "rb") as f:
            spy_log = f.read().decode("utf-8", "replace")
        if not os.path.exists(raw):
            raise RuntimeError("py-spy wrote nothing (exit %s): %s" % (
                spy.returncode, spy_log.strip()[-500:]))
        worker = profiling.worker_stacks(profiling.read_raw(raw), self.peer.profile_marker)
        out.update(stacks=worker, samples=sum(worker.values()), raw_file=raw,
                   py_spy_log=spy_log.strip().splitlines()[-2:],
                   command="py-spy record %s --rate %d" % (" ".join(flags), a.profile_rate))
        if spy_cpu is not None and after[0] > before[0]:
            # py-spy's own CPU use over its life (attach to stop) / the window
            out["profiler_cpu_share"] = round(spy_cpu / (after[0] - before[0]), 3)
        log("profile pass %s: %d worker samples, drain %.0f/s over %d tasks, %s" % (
            tag, out["samples"], out["drain_rate"], timing["tasks"], out["py_spy_log"]))
        return out

    def _profile_pyspy(self, n):
        import profiling
        a, res = self.args, self.result
        for path in (a.profile_out + ".svg", a.profile_out + "-python.svg"):
            if os.path.exists(path):
                os.unlink(path)
        # --nonblocking: py-spy never stops the worker, which keeps its
        # timing close to the plain pass's
        wall = self._profiled_drain(n, "wall", ["--idle", "--nonblocking"])
        if wall["samples"] < 50:
            raise RuntimeError("py-spy got only %d samples of the worker thread: %s" % (
                wall["samples"], wall["py_spy_log"]))
        # only shares are taken from this pass: py-spy may stop the process
        # for each sample (its default), which gives whole, consistent stacks
        # twice the tasks: only about a third of the time runs Python, and
        # only that is sampled here
        gil = self._profiled_drain(2 * n, "gil", ["--gil"])
        plain = self._plain
        prof = profiling.breakdown_stacks(wall["stacks"], plain["timing"],
                                          gil["stacks"] if gil["samples"] else None)
        prof["drain_rate"] = plain["drain_rate"]
        prof["complete"] = plain["complete"]
        prof["profiler"] = "py-spy %s, two passes at %d samples/s (`--idle --nonblocking`, " \
            "then `--gil`)" % (_pyspy_version(a.py_spy), a.profile_rate)
        prof["passes"] = {tag: {k: v for k, v in d.items() if k != "stacks"}
                          for tag, d in (("plain", plain), ("wall", wall), ("gil", gil))}
        prof["profiler_cpu_share"] = wall.get("profiler_cpu_share")
        for tag, d, path, title in (
                ("wall", wall, a.profile_out + ".svg",
                 "%s worker thread draining no-op tasks: all py-spy samples, waits included "
                 "(raw shares, not calibrated: see BENCHMARKS.md)" % self.peer.name),
                ("gil", gil, a.profile_out + "-python.svg",
                 "%s worker thread draining no-op tasks: samples holding the GIL "
                 "(time running Python)" % self.peer.name)):
            if not d["samples"]:
                continue
            try:
                profiling.render_svg(d["stacks"], path, title, running=(tag == "gil"))
                prof.setdefault("svg_files", {})[tag] = path
            except Exception as exc:  # the figures matter more than the picture
                prof["svg_error"] = "%s: %s" % (type(exc).__name__, exc)
        res["profile"] = prof
        log("profile (py-spy): %s" % json.dumps(prof["rows"]))

    def _profile_cprofile(self, n):
        import glob
        import shutil

        import profiling
        res = self.result
        outdir = os.path.join(self.workdir, "cprofile")
        shutil.rmtree(outdir, ignore_errors=True)
        wrapper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profile_worker.py")
        cmds = [[argv[0], wrapper, outdir, *argv[1:]] for argv in self.peer.worker_commands(1)]
        run = self._profiled_drain(n, "cprofile", commands=cmds)
        files = sorted(glob.glob(os.path.join(outdir, "*.pstats")))
        if not files:
            raise RuntimeError("cProfile wrote no statistics (see %s)" % self.workdir)
        rows = profiling.pstats_rows(files, self.peer.profile_marker)
        prof = profiling.breakdown_pstats(rows, self._plain["timing"])
        prof["drain_rate"] = self._plain["drain_rate"]
        prof["complete"] = self._plain["complete"]
        prof["passes"] = {"plain": self._plain, "cprofile": run}
        prof["profiler"] = "cProfile (wall clock), one profile per thread (profile_worker.py)"
        prof["pstats_files"] = files
        res["profile"] = prof
        log("profile (cProfile): %s" % json.dumps(prof["rows"]))

def parse_args(argv=None):
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


def main(peer_factory, argv=None):
    """Entry point of every adapter.  Prints exactly one JSON line on stdout."""
    args = parse_args(argv)
    out = {"ok": False}
    code = 1
    run = None
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
