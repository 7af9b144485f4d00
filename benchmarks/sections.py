"""Marked sections of BENCHMARKS.md: each standalone benchmark owns the text
between its ``<!-- name:start -->`` and ``<!-- name:end -->`` markers and
rewrites only that (benchmarks/run.py keeps every marked section as it is)."""

from __future__ import annotations

import os


def write_section(path: str, start_mark: str, end_mark: str, section: str) -> None:
    """Replace the section between the markers, or append it; nothing else changes."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    start, end = text.find(start_mark), text.find(end_mark)
    if start != -1 and end > start:
        text = text[:start] + section.rstrip("\n") + text[end + len(end_mark):]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    os.replace(tmp, path)
