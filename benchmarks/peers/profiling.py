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

The flame graph is drawn by profiling_svg.py, and the calibrated breakdown
(measured thread times, split by these categories) is profiling_timing.py.

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
``decode``        message decoding: ``rpqueue/storage/message.py`` and ``json``
``bookkeeping``   everything else: the worker loop, the runner, logging,
                  script-call set-up and reply handling in rpqueue
"""

from __future__ import annotations

import collections
import re

CATEGORIES = [
    ("redis_wait", "Redis round trip wait (socket send/recv of the queue's own calls)"),
    ("redis_py", "redis-py client overhead (packing, parsing, connection checks)"),
    ("decode", "message decode (rpqueue/storage/message.py, json)"),
    ("task", "task call (the no-op body and its counter)"),
    ("bookkeeping", "rpqueue bookkeeping (worker loop, runner, script calls, reply handling)"),
]
CATEGORY_LABEL = dict(CATEGORIES)

SOCKET_LEAVES = {"read_from_socket", "_read_from_socket", "send_packed_command", "sendall",
                 "recv", "recv_into"}
TASK_FUNCS = {"task_done", "task_stamp"}
# where the task bodies are defined (before the split: benchlib.py itself)
TASKS_FILE = "benchkit/tasks.py"

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
    # the task bodies live in benchkit/tasks.py (benchlib.py re-exports them;
    # they were in benchlib.py itself before)
    in_tasks = base == "benchlib.py" or file.endswith(TASKS_FILE)
    return (in_tasks and func in TASK_FUNCS) or base == "bench_tasks.py"


def _in_redis_py(file):
    return file.startswith("redis/") or "/redis/" in file


def _is_decode(func, file):
    # rpqueue/message.py before the storage layer (results files of older runs)
    return (file.endswith(("rpqueue/storage/message.py", "rpqueue/message.py"))
            or file.startswith("json/") or "/json/" in file)


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
        if base in ("benchlib.py", "bench_tasks.py") or file.endswith(TASKS_FILE):
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
        if r["func"] in TASK_FUNCS and r["file"].endswith(("benchlib.py", TASKS_FILE)):
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
