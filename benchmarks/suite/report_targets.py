"""BENCHMARKS.md, "Issue #6 targets": one row per target for our rpqueue,
measured, wanted and met, from this run's figures."""

from __future__ import annotations

from typing import Any

from .common import BASELINE, METRIC_PHASE, drain_counter
from .fmt import fmt_int, fmt_num, pct, verdict
from .report_backlog import backlog_ratios
from .report_ceilings import ceiling_figures


def targets_rows(report: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
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
    rows: list[tuple[str, str, str, bool | None]] = []

    def short(err: str | None) -> str:
        return (err or "?").splitlines()[0][:120].replace("|", "\\|")

    def missing(key: str) -> str:
        errs = newp.get("phase_errors") or {}
        for phase in METRIC_PHASE.get(key, ()):
            if phase in errs:
                return "failed: " + short(errs[phase])
        if newp and not newp.get("median"):
            return "failed: " + short(newp.get("error"))
        return not_run

    bl = report.get("backlog") or {}
    blnew = bl.get("rpqueue_new")

    def bl_missing() -> str:
        if not bl:
            return not_run + " (`--backlog` or `--full`)"
        if blnew is None:
            return not_run + " (rpqueue_new not in `--backlog-peers`)"
        err = blnew.get("error") or next((r.get("error") for r in blnew["sizes"].values()
                                          if r.get("error")), None)
        if err:
            return "failed: " + short(err)
        return not_run + " (needs two backlog sizes)"

    def vs_base(key: str) -> str:
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
    cmp: list[str] = []
    ok: bool | None = None
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


def targets_lines(report: dict[str, Any]) -> list[str]:
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
        lines.append("| %s | %s | %s | %s |" % (what, measured, wanted, verdict(ok)))
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
