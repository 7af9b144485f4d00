"""Run a worker command under cProfile, one profile per thread.

    python profile_worker.py OUTDIR -m rpqueue.run --module=bench_tasks ...
    python profile_worker.py OUTDIR path/to/worker.py --processes 1 default

The cProfile fallback of ``benchmarks/run.py --profile`` (used when py-spy
cannot attach to a process here). cProfile only follows the thread that
enables it, and workers run tasks in threads, so every
``threading.Thread.run`` is wrapped with its own profiler (wall-clock
timer, so time blocked in a socket call counts), and each thread's
statistics are written to ``OUTDIR/thread-<name>-<pid>.pstats`` when the
thread ends, or at interpreter exit for a daemon thread still running then.
"""
import atexit
import cProfile
import os
import re
import runpy
import sys
import threading
import time

outdir = sys.argv[1]
os.makedirs(outdir, exist_ok=True)
rest = sys.argv[2:]
# python options the worker command may carry (e.g. -W ignore::DeprecationWarning)
while rest and rest[0] in ("-W", "-X"):
    rest = rest[2:]

_profiled = []
_lock = threading.Lock()
_orig_run = threading.Thread.run


def _dump(thread, prof):
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", thread.name)
    path = os.path.join(outdir, "thread-%s-%d.pstats" % (name, os.getpid()))
    with _lock:
        if getattr(thread, "_bench_dumped", False):
            return
        thread._bench_dumped = True
    prof.dump_stats(path)


def _run(self):
    prof = cProfile.Profile(time.perf_counter)
    with _lock:
        _profiled.append((self, prof))
    prof.enable()
    try:
        _orig_run(self)
    finally:
        prof.disable()
        _dump(self, prof)


threading.Thread.run = _run


@atexit.register
def _finish():
    # Worker threads are daemons: give them a moment to return on their own
    # (they stop once the worker's stop flag is set), then dump the rest.
    deadline = time.time() + 5
    for t, _ in list(_profiled):
        if t.is_alive():
            t.join(max(0.0, deadline - time.time()))
    for t, prof in list(_profiled):
        if t.is_alive():
            _dump(t, prof)


if rest and rest[0] == "-m":
    sys.argv = [rest[1], *rest[2:]]
    runpy.run_module(rest[1], run_name="__main__", alter_sys=True)
else:
    sys.argv = rest
    sys.path.insert(0, os.path.dirname(os.path.abspath(rest[0])))
    runpy.run_path(rest[0], run_name="__main__")
