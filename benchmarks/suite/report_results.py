"""BENCHMARKS.md, "Results": the table of every system's medians, their
spread over the repeats, failures and notes, and the drain plot."""

from __future__ import annotations

import os
from typing import Any

from .common import BASELINE, METRIC_PHASE, METRICS, REPO
from .fmt import fmt_num, fmt_ratio, md_rel


def results_lines(report: dict[str, Any], path: str) -> list[str]:
    """The section; `path` is the markdown file's (for the plot's link)."""
    cfg = report["config"]
    lines: list[str] = ["## Results", ""]
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
    return lines
