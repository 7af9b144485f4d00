"""BENCHMARKS.md, "Where a task's time goes" (--profile): the split of our
worker thread's time per task, the top functions and the flame graphs."""

from __future__ import annotations

import os
from typing import Any

from .common import COUNTER_SHORT, PROFILE_PEER, drain_counter
from .fmt import fmt_int, md_rel


def profile_lines(report: dict[str, Any], md_path: str) -> list[str]:
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
