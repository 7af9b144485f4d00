"""How figures are written in the log and in BENCHMARKS.md."""

from __future__ import annotations

import os


def fmt_num(v: float | None, higher_better: bool = True) -> str:
    if v is None:
        return "n/a"
    if higher_better:
        if v >= 100:
            return "{:,.0f}".format(v)
        return "{:,.1f}".format(v)
    return "{:.2f}".format(v) if v < 100 else "{:,.0f}".format(v)


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return ""
    if r >= 10:
        return " (%.0f×)" % r
    if r >= 0.1:
        return " (%.2f×)" % r
    return " (%.2g×)" % r


def md_rel(path: str, md_path: str) -> str:
    """`path` as a link relative to the markdown file's directory."""
    return os.path.relpath(os.path.abspath(path), os.path.dirname(os.path.abspath(md_path)))


def fmt_int(v: float | None) -> str:
    return "n/a" if v is None else "{:,.0f}".format(v)


def pct(v: float | None, of: float | None) -> str:
    return "n/a" if (v is None or not of) else "%.0f%%" % (100.0 * v / of)


def us(rate: float | None) -> str:
    """Microseconds per call at `rate` calls/s."""
    return "n/a" if not rate else "%.1f" % (1e6 / rate)


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("**yes**" if ok else "**no**")
