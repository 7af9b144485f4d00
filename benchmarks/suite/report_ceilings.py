"""BENCHMARKS.md, "Round-trip ceilings": redis-benchmark's PING, the
redis-py loops, and each system's single-call enqueue as a share of them."""

from __future__ import annotations

from typing import Any

from .fmt import fmt_int, pct, us


def ceiling_figures(report: dict[str, Any]) -> dict[str, float | None]:
    """The round-trip ceilings of this run (medians over the repeats), each
    None when missing: `rb` redis-benchmark PING_MBULK (C client); from
    redis-py with hiredis, one command per round trip: `client`
    (`Redis.ping()`), `conn` (PING on one held connection), `evalsha`
    (EVALSHA of a trivial script on one held connection: the judged one) and
    `shaped` (the same EVALSHA with execute()'s arguments; not a ceiling)."""
    rb = report.get("redis_benchmark") or {}
    mb = rb.get("PING_MBULK") or next((v for k, v in rb.items() if not k.startswith("_")), None)
    pc = report.get("python_ceiling") or {}
    return {"rb": mb, "client": pc.get("client_rps"), "conn": pc.get("connection_rps"),
            "evalsha": pc.get("evalsha_rps"), "shaped": pc.get("evalsha_shaped_rps")}


def python_ceiling_lines(report: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    pc = report.get("python_ceiling") or {}
    c = ceiling_figures(report)
    runs = pc.get("runs") or []
    if c["client"]:
        first = runs[0] if runs else {}
        conn_s = max(0.5, (pc.get("seconds") or 2) / 2.0)
        lines.append("From Python: one redis-py %s client%s (the `rpqueue_new` venv), one "
                     "command per round trip on one connection, each loop once per repeat, "
                     "right before our rpqueue's run (medians over %d run%s):" % (
                         first.get("redis_py", "?"),
                         " with the hiredis parser" if first.get("hiredis") else
                         " (no hiredis: pure-Python parser)", len(runs),
                         "" if len(runs) == 1 else "s"))
        lines.append("")
        many = len(runs) > 1
        lines.append("| loop (redis-py, one request in flight) | seconds | calls/s | "
                     "µs per call |" + (" min–max |" if many else ""))
        lines.append("| --- | ---: | ---: | ---: |" + (" ---: |" if many else ""))

        def row(label: str, key: str, fig: float | None, seconds: float) -> None:
            vals = [r[key] for r in runs if r.get(key)]
            spread = (" %s–%s |" % (fmt_int(min(vals)), fmt_int(max(vals))) if many else "")
            lines.append("| %s | %g | %s | %s |%s" % (label, seconds, fmt_int(fig), us(fig),
                                                      spread))

        row("`Redis.ping()` (the public client API: pool checkout, command wrappers)",
            "client_rps", c["client"], pc.get("seconds", 2))
        if c["conn"]:
            row("`PING` on one held connection (`send_command` + `read_response`)",
                "connection_rps", c["conn"], conn_s)
        if c["evalsha"]:
            row("**`EVALSHA` of a trivial script (`return 1`, no keys) on one held connection**: "
                "the kind of call `execute()` makes, with no script work. The ceiling the "
                "single-`execute()` target is judged against", "evalsha_rps", c["evalsha"], conn_s)
        else:
            lines.append("| `EVALSHA` of a trivial script on one held connection | | not measured "
                         "in this run (older harness) | |" + (" |" if many else ""))
        if c["shaped"]:
            row("the same `EVALSHA` with the arguments of one no-op `execute()` (7 keys, the "
                "id, the ~100-byte message, 3 small values). Not a ceiling: the difference to "
                "the row above is packing and sending those arguments",
                "evalsha_shaped_rps", c["shaped"], conn_s)
        lines.append("")
        if c["rb"] and c["conn"]:
            lines.append("In this run the held-connection `PING` loop reached %s of "
                         "redis-benchmark's rate." % pct(c["conn"], c["rb"]))
            lines.append("")
    elif pc.get("error"):
        lines.append("The Python ceiling did not run: %s" % pc["error"])
        lines.append("")
    rows = [(p["label"], (p.get("median") or {}).get("enqueue_single"), p.get("paired"))
            for p in report["peers"].values() if (p.get("median") or {}).get("enqueue_single")]
    has_paired = any(pr for _, _, pr in rows)
    if has_paired:
        lines.append(
            "Interleaved in each system's producer: %s rounds per run, each one block of "
            "single-call enqueues and one block of the same number of trivial `EVALSHA` calls on "
            "one held redis-py connection (%s calls per block, the order alternating), in the "
            "same process, seconds apart at most. Whatever slows round trips (other load; on a "
            "small VM, whether the producer and redis-server happen to share a core) weighs on "
            "both alike. The ratio is taken per round; each run reports the median of its "
            "rounds, and the cell is the median of the runs (with their min–max)." % (
                next(pr["rounds"] // pr["runs"] for _, _, pr in rows if pr),
                fmt_int(next(pr["block"] for _, _, pr in rows if pr))))
        lines.append("")
    if rows and (c["rb"] or c["client"] or has_paired):
        lines.append("Single-call enqueue (`execute()` and equivalents: one task per call, "
                     "calls one after another on one client) as a share of these ceilings:")
        lines.append("")
        cols = [(title, c[key]) for key, title in (
            ("rb", "% of redis-benchmark PING"), ("client", "% of redis-py `Redis.ping()`"),
            ("conn", "% of redis-py held-connection PING"),
            ("evalsha", "% of redis-py held-connection EVALSHA")) if c[key]]
        head = ["system", "enqueue, single calls (tasks/s)"] + [t for t, _ in cols]
        if has_paired:
            head.append("**% of the EVALSHA ceiling, interleaved in the producer** (judged)")
        lines.append("| " + " | ".join(head) + " |")
        lines.append("| --- |" + " ---: |" * (len(head) - 1))
        for label, v, pr in rows:
            cells = [label, fmt_int(v)] + [pct(v, fig) for _, fig in cols]
            if has_paired:
                cells.append("n/a" if not pr else "%.0f%%%s" % (
                    100 * pr["ratio"], "" if pr["runs"] < 2 else " (%.0f–%.0f%%)" % (
                        100 * pr["min"], 100 * pr["max"])))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines



def redis_benchmark_lines(report: dict[str, Any]) -> list[str]:
    """The section's heading and its redis-benchmark paragraph."""
    rb = report.get("redis_benchmark") or {}
    lines = ["## Round-trip ceilings", ""]
    if rb:
        mb = rb.get("PING_MBULK") or next(v for k, v in rb.items() if not k.startswith("_"))
        runs = [r.get("PING_MBULK") for r in report.get("redis_benchmark_runs_rps", [])
                if r.get("PING_MBULK")]
        spread = (" (range %s–%s over %d runs)" % ("{:,.0f}".format(min(runs)), "{:,.0f}".format(max(runs)),
                                                   len(runs))) if len(runs) > 1 else ""
        lines.append("`redis-benchmark -c 1 -n 100000 -t ping` (one client, one request in flight), "
                     "run once per repeat: **%s requests/s** median for PING_MBULK%s; PING_INLINE "
                     "%s. That is about %.0f µs per round trip: a producer or worker that needs k "
                     "sequential round trips per task cannot exceed about %s/k tasks/s on one "
                     "connection." % ("{:,.0f}".format(mb), spread,
                                      "{:,.0f}".format(rb.get("PING_INLINE", 0)), 1e6 / mb,
                                      "{:,.0f}".format(mb)))
    else:
        lines.append("redis-benchmark did not run.")
    lines.append("")
    return lines
