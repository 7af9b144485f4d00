"""Turn a worker profile into "where a task's time goes" (standard library only).

Two inputs are understood:

* py-spy's ``--format raw`` output (collapsed stacks, one ``f1;f2;...;leaf N``
  line per distinct stack; each frame is ``function (file:line)``), recorded
  with ``--idle`` so that time blocked in a socket call is sampled too;
* cProfile statistics (the fallback when py-spy cannot attach), given as
  rows of (file, line, function, self time, cumulative time, calls, callers).

Only the worker thread's samples are kept (the thread whose stacks contain
the peer's marker frame, e.g. ``Worker.run (rpqueue/worker/loop.py``); the
supervisor, upkeep and monitor threads just wait and would otherwise swamp
the picture.

Every sample (py-spy) or every second of self time (cProfile) goes to one
category, tested in this order:

``task``          the task body: the stack passes through the benchmark's
                  no-op task (``benchlib.task_done``); with the Redis
                  counter split into its own INCR round trip and the rest
``redis_wait``    the innermost frame is redis-py's socket read
                  (``read_from_socket``) or write (``send_packed_command``):
                  waiting for Redis, and the send/recv system calls
``redis_py``      any other sample inside redis-py (command packing, reply
                  parsing, connection checks, pipelines)
``decode``        message decoding: ``rpqueue/message.py`` and ``json``
``bookkeeping``   everything else: the worker loop, the runner, logging,
                  script-call set-up and reply handling in rpqueue
"""

from __future__ import annotations

import collections
import html
import os
import re

CATEGORIES = [
    ("redis_wait", "Redis round trip wait (socket send/recv of the queue's own calls)"),
    ("redis_py", "redis-py client overhead (packing, parsing, connection checks)"),
    ("decode", "message decode (rpqueue/message.py, json)"),
    ("task", "task call (the no-op body and its counter)"),
    ("bookkeeping", "rpqueue bookkeeping (worker loop, runner, script calls, reply handling)"),
]
CATEGORY_LABEL = dict(CATEGORIES)

SOCKET_LEAVES = {"read_from_socket", "_read_from_socket", "send_packed_command", "sendall",
                 "recv", "recv_into"}
TASK_FUNCS = {"task_done", "task_stamp"}

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def parse_frame(frame):
    """'Worker.run (rpqueue/worker/loop.py:178)' -> ('Worker.run', 'rpqueue/worker/loop.py', 178)."""
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip(), "", 0
    return m.group("func"), m.group("file"), int(m.group("line") or 0)


def read_raw(path):
    """py-spy raw output -> Counter{tuple of frames (root first): samples}."""
    stacks = collections.Counter()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            stack, _, count = line.rpartition(" ")
            try:
                n = int(count)
            except ValueError:
                continue
            stacks[tuple(stack.split(";"))] += n
    return stacks


def _marks(frame, marker):
    func, file, _ = parse_frame(frame)
    return file.endswith(marker[0]) and func.rsplit(".", 1)[-1] == marker[1]


def worker_stacks(stacks, marker):
    """Keep the stacks of the worker thread: those with a frame that matches
    `marker`, a (file suffix, function name) pair such as
    ("rpqueue/worker/loop.py", "run"). Without a marker (or when nothing
    matches), drop the stacks that only wait on a threading primitive."""
    if marker:
        kept = collections.Counter({s: n for s, n in stacks.items()
                                    if any(_marks(fr, marker) for fr in s)})
        if kept:
            return kept
    waiting = ("Event.wait", "Condition.wait", "Thread.join", "Thread._wait_for_tstate_lock")
    return collections.Counter({s: n for s, n in stacks.items()
                                if not parse_frame(s[-1])[0].startswith(waiting)})


def _is_task_frame(func, file):
    base = file.rsplit("/", 1)[-1]
    return (base == "benchlib.py" and func in TASK_FUNCS) or base == "bench_tasks.py"


def _in_redis_py(file):
    return file.startswith("redis/") or "/redis/" in file


def _is_decode(func, file):
    return file.endswith("rpqueue/message.py") or file.startswith("json/") or "/json/" in file


def classify(stack):
    """(category, subcategory or None) of one sampled stack (root first)."""
    frames = [parse_frame(f) for f in stack]
    leaf_func = frames[-1][0].rsplit(".", 1)[-1] if frames else ""
    socket_leaf = leaf_func in SOCKET_LEAVES
    if any(_is_task_frame(fn, fl) for fn, fl, _ in frames):
        return "task", ("task_redis_wait" if socket_leaf else "task_other")
    if socket_leaf:
        return "redis_wait", None
    if any(_in_redis_py(fl) for _, fl, _ in frames):
        return "redis_py", None
    if any(_is_decode(fn, fl) for fn, fl, _ in frames):
        return "decode", None
    return "bookkeeping", None


def summarize_stacks(stacks, us_per_task=None, top=15):
    """Category shares and top functions by self time, from worker-thread stacks."""
    total = sum(stacks.values())
    cats = collections.Counter()
    subs = collections.Counter()
    self_time = collections.Counter()
    for stack, n in stacks.items():
        cat, sub = classify(stack)
        cats[cat] += n
        if sub:
            subs[sub] += n
        func, file, _ = parse_frame(stack[-1])
        self_time[(func, file, cat)] += n
    return _summary(total, cats, subs, self_time, us_per_task, top, unit="samples")


def _summary(total, cats, subs, self_time, us_per_task, top, unit):
    def share(v):
        return round(100.0 * v / total, 2) if total else None

    def us(v):
        return round(us_per_task * v / total, 2) if (total and us_per_task) else None

    out = {"total": total, "unit": unit, "us_per_task": us_per_task, "categories": [],
           "task_split": {}, "top_self": []}
    for key, label in CATEGORIES:
        out["categories"].append({"key": key, "label": label, "amount": cats.get(key, 0),
                                  "pct": share(cats.get(key, 0)), "us": us(cats.get(key, 0))})
    for key in ("task_redis_wait", "task_other"):
        if key in subs:
            out["task_split"][key] = {"pct": share(subs[key]), "us": us(subs[key])}
    for (func, file, cat), v in self_time.most_common(top):
        out["top_self"].append({"function": func, "file": file, "category": cat,
                                "pct": share(v), "us": us(v)})
    return out


# ---------------------------------------------------------------------------
# cProfile
# ---------------------------------------------------------------------------

SOCKET_BUILTINS = ("recv_into", "recv", "sendall", "send")


def pstats_rows(paths, marker=None):
    """Rows for summarize_pstats_rows from cProfile files (one per thread):
    the files whose functions include `marker` (see worker_stacks), else all."""
    import pstats

    def load(path):
        rows = []
        for (file, line, func), (_cc, nc, tt, ct, callers) in pstats.Stats(path).stats.items():
            rows.append({"file": file, "line": line, "func": func, "tt": tt, "ct": ct, "nc": nc,
                         "callers": [(cf, cl, cfn, v[2]) for (cf, cl, cfn), v in callers.items()]})
        return rows

    tables = [load(p) for p in paths]
    if marker:
        picked = [t for t in tables
                  if any(r["file"].endswith(marker[0]) and r["func"] == marker[1] for r in t)]
        if picked:
            tables = picked
    return [r for t in tables for r in t]


def summarize_pstats_rows(rows, us_per_task=None, top=15):
    """rows: dicts with file, line, func, tt, ct, nc, callers [(file, line, func, tt)].

    cProfile sees no stacks, so each function's self time is classified by
    its own file; a C function's (file '~') goes to the category of its
    callers, in proportion, except the socket calls, which are Redis wait.
    The task body's own INCR wait cannot be told apart from the queue's
    calls here: it is counted as Redis wait, and ``task_cumulative`` gives
    the task body's total time for reference.
    """
    def own_cat(file, func):
        base = file.rsplit("/", 1)[-1]
        if base in ("benchlib.py", "bench_tasks.py"):
            return "task"
        if _in_redis_py(file):
            return "redis_py"
        if _is_decode(func, file):
            return "decode"
        return "bookkeeping"

    def builtin_socket(func):
        m = re.search(r"method '(\w+)' of '_socket\.socket'", func)
        return bool(m and m.group(1) in SOCKET_BUILTINS)

    cats = collections.Counter()
    self_time = collections.Counter()
    task_ct = 0.0
    for r in rows:
        tt = r["tt"]
        if r["func"] in TASK_FUNCS and r["file"].endswith("benchlib.py"):
            task_ct += r["ct"]
        if r["file"] == "~":
            if builtin_socket(r["func"]):
                cats["redis_wait"] += tt
                self_time[(r["func"], "~", "redis_wait")] += tt
                continue
            callers = r.get("callers") or []
            ctt = sum(c[3] for c in callers)
            if ctt > 0:
                for cf, _cl, cfn, c_tt in callers:
                    cat = "bookkeeping" if cf == "~" else own_cat(cf, cfn)
                    cats[cat] += tt * c_tt / ctt
                first = max(callers, key=lambda c: c[3])
                self_time[(r["func"], "~", own_cat(first[0], first[2]))] += tt
            else:
                cats["bookkeeping"] += tt
                self_time[(r["func"], "~", "bookkeeping")] += tt
            continue
        cat = own_cat(r["file"], r["func"])
        cats[cat] += tt
        self_time[(r["func"], r["file"], cat)] += tt
    total = sum(cats.values())
    out = _summary(total, cats, collections.Counter(), self_time, us_per_task, top,
                   unit="seconds")
    out["task_cumulative"] = {"seconds": round(task_ct, 4),
                              "pct": round(100.0 * task_ct / total, 2) if total else None}
    return out


# ---------------------------------------------------------------------------
# SVG (icicle graph: root at the top, width = share of samples)
# ---------------------------------------------------------------------------

_COLORS = {"redis_wait": "#e4572e", "redis_py": "#f3a712", "decode": "#a8c686",
           "task": "#669bbc", "bookkeeping": "#b8b8d1", "": "#dddddd"}


def render_svg(stacks, path, title, width=1400, row=17, min_px=0.6, running=False):
    """Write an icicle graph of `stacks` (frames merged by function, line
    numbers dropped). Hover a box for its name, samples and share.
    running: the samples are of a running thread (py-spy --gil), so a socket
    function on top is its Python code, coloured as redis-py, not as a wait."""
    total = sum(stacks.values())
    root = {"name": "all", "n": 0, "kids": {}, "cats": collections.Counter()}
    for stack, n in stacks.items():
        cat, _ = classify(stack)
        if running and cat == "redis_wait":
            cat = "redis_py"
        root["n"] += n
        root["cats"][cat] += n
        node = root
        for fr in stack:
            if fr.startswith("process "):  # py-spy --subprocesses adds one per process
                continue
            func, file, _ = parse_frame(fr)
            name = "%s (%s)" % (func, file) if file else func
            kid = node["kids"].get(name)
            if kid is None:
                kid = node["kids"][name] = {"name": name, "n": 0, "kids": {},
                                            "cats": collections.Counter()}
            kid["n"] += n
            kid["cats"][cat] += n  # a box takes the colour of most of its samples
            node = kid
    depth = [0]
    boxes = []

    def walk(node, x, level):
        w = width * node["n"] / total if total else 0
        if w < min_px:
            return
        depth[0] = max(depth[0], level)
        boxes.append((x, level, w, node))
        cx = x
        for kid in sorted(node["kids"].values(), key=lambda k: -k["n"]):
            walk(kid, cx, level + 1)
            cx += width * kid["n"] / total

    walk(root, 0.0, 0)
    top_pad = 40
    legend_h = 22
    height = top_pad + (depth[0] + 1) * row + legend_h + 10
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="monospace" font-size="11">' % (width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="6" y="16" font-size="13">%s</text>' % html.escape(title),
           '<text x="6" y="32" fill="#555">%d samples; box width = share of the worker '
           'thread\'s samples; hover for details</text>' % total]
    for x, level, w, node in boxes:
        y = top_pad + level * row
        pct = 100.0 * node["n"] / total
        label = "%s: %d samples, %.2f%%" % (node["name"], node["n"], pct)
        out.append('<g><title>%s</title><rect x="%.2f" y="%d" width="%.2f" height="%d" '
                   'fill="%s" stroke="white" stroke-width="0.5"/>' % (
                       html.escape(label), x, y, w, row - 1,
                       _COLORS.get(node["cats"].most_common(1)[0][0] if node["cats"] else "",
                                   "#ddd")))
        chars = int(w / 6.6)
        if chars >= 4:
            text = node["name"] if len(node["name"]) <= chars else node["name"][:chars - 2] + ".."
            out.append('<text x="%.2f" y="%d">%s</text>' % (x + 2, y + row - 5, html.escape(text)))
        out.append("</g>")
    ly = height - legend_h
    lx = 6
    for key, label in CATEGORIES:
        short = label.split(" (")[0]
        out.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>' % (lx, ly, _COLORS[key]))
        out.append('<text x="%d" y="%d">%s</text>' % (lx + 16, ly + 10, html.escape(short)))
        lx += 16 + 7 * len(short) + 18
    out.append("</svg>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


# ---------------------------------------------------------------------------
# Calibrated breakdown: measured thread times, split by the profile
# ---------------------------------------------------------------------------
#
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
    ("decode", "message decode (Python: rpqueue/message.py, json)"),
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
