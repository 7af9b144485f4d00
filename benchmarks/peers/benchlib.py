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

Keys used (all under ``bench:``, in the same Redis database as the queues;
the database is flushed between phases):

``bench:done``      INCR'd once per executed no-op task
``bench:t_first``   time.time() taken at the start of the task that got INCR == 1
``bench:t_last``    time.time() taken at the end of the task that got INCR == total
``bench:finished``  list the last task pushes to, so the producer can BLPOP
                    instead of polling
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
import subprocess
import sys
import time
import traceback

import redis

K_DONE = "bench:done"
K_FIRST = "bench:t_first"
K_LAST = "bench:t_last"
K_FINISHED = "bench:finished"
K_LAT = "bench:lat"

ENV_URL = "BENCH_REDIS_URL"
ENV_TOTAL = "BENCH_TOTAL"

# --------------------------------------------------------------------------
# worker side: the task bodies
# --------------------------------------------------------------------------

_conn = None
_conn_pid = None
_total = None


def _redis():
    """One plain redis-py connection per worker process (fork-safe)."""
    global _conn, _conn_pid
    pid = os.getpid()
    if _conn is None or _conn_pid != pid:
        _conn = redis.Redis.from_url(os.environ[ENV_URL])
        _conn_pid = pid
    return _conn


def task_done():
    """Body of the no-op task used for drain measurements.

    Costs exactly one Redis round trip per task (the INCR), plus one SET for
    the first and last task of the run.
    """
    global _total
    started = time.time()
    r = _redis()
    n = r.incr(K_DONE)
    if _total is None:
        _total = int(os.environ.get(ENV_TOTAL, "0"))
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

    def enqueue_batch(self, n):
        """Enqueue n no-op tasks through the peer's batch API."""
        raise NotImplementedError

    def enqueue_stamp(self):
        raise NotImplementedError

    # workers -------------------------------------------------------------
    def worker_commands(self, processes):
        """List of argv lists, one per OS process to launch, so that in total
        `processes` worker processes run, each at concurrency 1."""
        raise NotImplementedError

    def worker_env(self):
        return {}

    def close(self):
        pass


class Workers:
    """Launches worker commands in their own process groups, records the
    groups in a pid file (so the harness can clean up after a crash), and
    stops them."""

    def __init__(self, peer, processes, total, workdir, tag):
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
        self.pidfile = os.path.join(workdir, "workers.pids")
        for i, argv in enumerate(peer.worker_commands(processes)):
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

    # --- helpers -----------------------------------------------------------
    def flush(self):
        self.r.flushdb()

    def timed_enqueue(self, fn, n):
        t0 = time.perf_counter()
        fn(n)
        dt = time.perf_counter() - t0
        return n / dt, dt

    def drain(self, processes, tag):
        """Start `processes` workers on the pre-filled queue and wait until
        all tasks ran (or the phase timeout).  Returns (rate, info, workers).
        The workers are left running so the caller may reuse them."""
        n = self.args.tasks
        self.r.delete(K_DONE, K_FIRST, K_LAST, K_FINISHED)
        w = Workers(self.peer, processes, n, self.workdir, tag)
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
        if not finished and self.r.exists(K_LAST):
            finished = True  # the last task ended between our last BLPOP and the deadline
        now = time.time()
        done_at_cut = int(self.r.get(K_DONE) or 0)
        time.sleep(0.3)  # let duplicates (if any) show up before we count
        done = int(self.r.get(K_DONE) or 0)
        first = self.r.get(K_FIRST)
        info = {"processes": processes, "complete": finished, "executed": done,
                "startup_s": None}
        if first is None:
            w.stop()
            raise RuntimeError("no task ran within %ss\n%s" % (self.args.phase_timeout, w.tail()))
        first = float(first)
        info["startup_s"] = round(first - w.started, 3)
        if finished:
            last = float(self.r.get(K_LAST))
            elapsed = last - first
            rate = n / elapsed
        else:
            # partial: rate over what ran so far (steady state estimate)
            elapsed = now - first
            rate = done_at_cut / elapsed if elapsed > 0 else None
            done = done_at_cut
        info["elapsed_s"] = round(elapsed, 4)
        if finished and done != n:
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

    # --- the protocol ------------------------------------------------------
    def _phase(self, name, fn):
        """Run one phase; a failing phase is recorded and the next one runs."""
        try:
            fn()
            return True
        except Exception as exc:
            msg = "%s: %s" % (type(exc).__name__, exc)
            log("phase %s failed: %s" % (name, msg))
            self.result["errors"].append({"phase": name, "error": msg[:2000]})
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
                w = state["w"] = Workers(p, 1, n, self.workdir, "latency")
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
            rate, dt = self.timed_enqueue(p.enqueue_batch, n)
            res["enqueue_batch"] = rate
            log("enqueue batch: %.0f/s (%.2fs)" % (rate, dt))

        def refill():
            rate, dt = self.timed_enqueue(p.enqueue_noops, n)
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


def parse_args(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="redis://127.0.0.1:PORT/DB")
    ap.add_argument("--tasks", type=int, default=20000)
    ap.add_argument("--latency-samples", type=int, default=500)
    ap.add_argument("--phase-timeout", type=float, default=60.0,
                    help="max seconds for one drain phase (worker start included)")
    ap.add_argument("--latency-timeout", type=float, default=20.0)
    ap.add_argument("--workdir", required=True, help="scratch dir for worker logs")
    ap.add_argument("--variant", default=None)
    ap.add_argument("--peer-id", default=None)
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
            run.run()
            out = run.result
            out["ok"] = True
            code = 0
        finally:
            peer.close()
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
