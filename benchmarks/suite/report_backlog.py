"""BENCHMARKS.md, "Backlog scaling": memory per queued task and the rates
with a backlog in place (--backlog)."""

from __future__ import annotations

from typing import Any

from .common import BASELINE
from .fmt import fmt_int, fmt_ratio


def backlog_lines(report: dict[str, Any]) -> list[str]:
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

    def probe_cell(res: dict[str, Any], key: str) -> str:
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


def backlog_ratios(report: dict[str, Any]) -> dict[str, Any] | None:
    """{'sizes': (smallest, largest), 'peers': {pid: {metric: largest/smallest}}} or None."""
    bl = report.get("backlog") or {}
    sizes = sorted({int(s) for e in bl.values() for s in e["sizes"]})
    if len(sizes) < 2:
        return None
    lo, hi = str(sizes[0]), str(sizes[-1])
    out: dict[str, Any] = {"sizes": (sizes[0], sizes[-1]), "peers": {}}
    for pid, e in bl.items():
        a, b = e["sizes"].get(lo) or {}, e["sizes"].get(hi) or {}
        r: dict[str, float | None] = {}
        for key in ("enqueue_single", "drain_1"):
            r[key] = (b[key] / a[key]) if (a.get(key) and b.get(key)) else None
        out["peers"][pid] = r
    return out
