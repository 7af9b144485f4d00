"""The calibrated breakdown of "where a task's time goes": the totals from
the kernel's accounting of the worker thread, split by a profile (py-spy
stacks or cProfile rows, categorised by profiling.py).
"""

from __future__ import annotations

import collections
import os

from profiling import classify, parse_frame, summarize_pstats_rows, summarize_stacks

# On a small, shared machine a sampling profiler is biased towards moments
# when the worker is blocked: the sampler itself needs a free core, and one
# frees up exactly when the worker blocks in a socket call. So the raw sample
# shares overstate the wait. The breakdown below takes the totals from the
# kernel's accounting of the worker thread over the same window
# (/proc/<pid>/task/<tid>/schedstat: time on a CPU and time waiting for one;
# /proc/<pid>/task/<tid>/stat: user/system split) and uses the profile only to
# split each total:
#
#   wall = on CPU (user + system) + run-queue wait + blocked
#   blocked + system      -> Redis round trips, split between the queue's own
#                            calls and the task's INCR by their socket samples
#   user                  -> Python: split by the samples that are not in a
#                            socket call (redis-py, decode, task, bookkeeping)
#   run-queue wait        -> its own row: runnable, waiting for a free core

BREAKDOWN_ROWS = [
    ("redis_wait", "Redis round trip wait: the queue's own calls (blocked in socket send/recv, "
                   "plus kernel time)"),
    ("redis_py", "redis-py client overhead (Python: packing, parsing, connection checks)"),
    ("decode", "message decode (Python: rpqueue/storage/message.py, json)"),
    ("task", "task call (the no-op body)"),
    ("bookkeeping", "rpqueue bookkeeping (Python: worker loop, runner, script calls, replies)"),
    ("runq", "waiting for a free CPU core (run queue; other load on the machine)"),
]
PY_CATS = ("redis_py", "decode", "task", "bookkeeping")


def _rows(timing, socket_queue_share, py_shares):
    wall = timing["wall_us"]
    user = timing["user_us"]
    socket_total = max(0.0, wall - timing["run_us"] - timing["runq_us"]) + timing["sys_us"]
    us = {"redis_wait": socket_total * socket_queue_share, "runq": timing["runq_us"]}
    for c in PY_CATS:
        us[c] = user * py_shares.get(c, 0.0)
    task_wait = socket_total * (1 - socket_queue_share)
    task_py = us["task"]
    us["task"] = task_py + task_wait
    rows = []
    for key, label in BREAKDOWN_ROWS:
        rows.append({"key": key, "label": label, "us": round(us[key], 2),
                     "pct": round(100.0 * us[key] / wall, 1) if wall else None})
    split = {"task_redis_wait": {"us": round(task_wait, 2),
                                 "pct": round(100.0 * task_wait / wall, 1) if wall else None},
             "task_python": {"us": round(task_py, 2),
                             "pct": round(100.0 * task_py / wall, 1) if wall else None}}
    return rows, split


def breakdown_stacks(stacks, timing, gil_stacks=None, top=12):
    """Calibrated breakdown from py-spy stacks of the worker thread.

    `stacks` (an --idle pass) splits the socket time between the queue's
    calls and the task's INCR. The Python time is split by the samples of
    `stacks` that are not in a socket call, pooled with `gil_stacks` (a
    --gil pass: every sample is the thread running Python; how many py-spy
    gets varies a lot on a loaded machine, hence the pooling). In a --gil
    sample whose innermost frame is a socket function, the thread is running
    that function's Python (or the hiredis reader), not waiting: redis-py
    overhead (or the task's, inside the task)."""
    sock = collections.Counter()
    py = collections.Counter()
    py_self = collections.defaultdict(collections.Counter)  # (func, file) -> {category: n}
    for stack, n in stacks.items():
        cat, sub = classify(stack)
        if cat == "redis_wait" or sub == "task_redis_wait":
            sock["queue" if cat == "redis_wait" else "task"] += n
            continue
        py[cat] += n
        func, file, _ = parse_frame(stack[-1])
        py_self[(func, file)][cat] += n
    idle_python = sum(py.values())
    for stack, n in (gil_stacks or {}).items():
        cat, _ = classify(stack)
        if cat == "redis_wait":
            cat = "redis_py"
        py[cat] += n
        func, file, _ = parse_frame(stack[-1])
        py_self[(func, file)][cat] += n
    s_total = sum(sock.values())
    p_total = sum(py.values())
    queue_share = sock["queue"] / s_total if s_total else 1.0
    shares = {c: py[c] / p_total for c in PY_CATS} if p_total else {"bookkeeping": 1.0}
    out = {"method": "py-spy", "timing": timing,
           "samples": {"worker_thread": sum(stacks.values()), "socket": s_total,
                       "python": p_total, "python_idle_pass": idle_python,
                       "python_gil_pass": p_total - idle_python},
           "raw_shares": summarize_stacks(stacks, None, top=0)["categories"]}
    out["rows"], out["task_split"] = _rows(timing, queue_share, shares)
    ranked = sorted(py_self.items(), key=lambda kv: -sum(kv[1].values()))[:top]
    out["top_python"] = [
        {"function": f, "file": fl,
         # a function called from the task body and from rpqueue counts in both rows
         "category": "+".join(c for c, _ in cats.most_common()),
         "pct_of_python": round(100.0 * sum(cats.values()) / p_total, 1),
         "us": round(timing["user_us"] * sum(cats.values()) / p_total, 2)}
        for (f, fl), cats in ranked] if p_total else []
    return out


def breakdown_pstats(rows, timing, top=12):
    """Calibrated breakdown from cProfile rows (see summarize_pstats_rows).

    cProfile cannot tell the task's INCR wait from the queue's own calls:
    all socket time is counted as the queue's, and the task row holds only
    the task body's Python time."""
    summ = summarize_pstats_rows(rows, None, top=200)
    amounts = {c["key"]: c["amount"] for c in summ["categories"]}
    p_total = sum(amounts.get(c, 0.0) for c in PY_CATS)
    shares = {c: amounts.get(c, 0.0) / p_total for c in PY_CATS} if p_total else {"bookkeeping": 1.0}
    out = {"method": "cProfile", "timing": timing,
           "raw_shares": summ["categories"], "task_cumulative": summ["task_cumulative"]}
    out["rows"], out["task_split"] = _rows(timing, 1.0, shares)
    py_top = [t for t in summ["top_self"] if t["category"] != "redis_wait"][:top]
    out["top_python"] = [
        {"function": t["function"], "file": t["file"], "category": t["category"],
         "pct_of_python": round(100.0 * t["pct"] / (100.0 * p_total / summ["total"]), 1)
         if p_total else None,
         "us": round(timing["user_us"] * t["pct"] / (100.0 * p_total / summ["total"]), 2)
         if p_total else None}
        for t in py_top]
    return out


def thread_times(pid):
    """{tid: (on-CPU ns, run-queue wait ns, utime ticks, stime ticks)} of a process."""
    out = {}
    base = "/proc/%d/task" % pid
    try:
        tids = os.listdir(base)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("%s/%s/schedstat" % (base, tid)) as f:
                run_ns, wait_ns = (int(x) for x in f.read().split()[:2])
            with open("%s/%s/stat" % (base, tid)) as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2:].split()
            out[int(tid)] = (run_ns, wait_ns, int(fields[11]), int(fields[12]))
        except (OSError, ValueError, IndexError):
            continue
    return out


def window_timing(before, after):
    """Per-task times of the busiest thread between two (time, tasks done,
    thread_times) readings, in µs."""
    (t0, d0, th0), (t1, d1, th1) = before, after
    tasks = d1 - d0
    if tasks <= 0:
        raise RuntimeError("no task ran in the profiled window")
    deltas = {tid: tuple(b - a for a, b in zip(th0[tid], th1[tid])) for tid in th1 if tid in th0}
    if not deltas:
        raise RuntimeError("could not read the worker's thread times from /proc")
    tid, (run_ns, wait_ns, ut, st) = max(deltas.items(), key=lambda kv: kv[1][0])
    run_us = run_ns / 1000.0 / tasks
    user_frac = ut / (ut + st) if (ut + st) else 1.0
    return {"tasks": tasks, "wall_s": round(t1 - t0, 4),
            "wall_us": round((t1 - t0) * 1e6 / tasks, 2),
            "run_us": round(run_us, 2), "runq_us": round(wait_ns / 1000.0 / tasks, 2),
            "user_us": round(run_us * user_frac, 2), "sys_us": round(run_us * (1 - user_frac), 2),
            "user_sys_ticks": [ut, st], "thread_id": tid,
            "threads_cpu_us": round(sum(d[0] for d in deltas.values()) / 1000.0 / tasks, 2)}
