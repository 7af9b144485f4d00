"""Facts about the machine and the repository, recorded with each run."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from typing import Any

from .common import REPO


def machine_facts() -> dict[str, Any]:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    osname = platform.platform()
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    osname = line.split("=", 1)[1].strip().strip('"') + ", kernel " + platform.release()
    except OSError:
        pass
    try:
        rv = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        rv = "?"
    try:
        rb = subprocess.run(["redis-benchmark", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        rb = "?"
    return {
        "cpu_model": cpu,
        "cpu_cores": os.cpu_count(),
        "memory_gib": _mem_gib(),
        "os": osname,
        "python": platform.python_version() + " (" + sys.executable + ")",
        "redis_server": rv,
        "redis_benchmark": rb,
    }


def repo_state() -> dict[str, Any]:
    """Commit of this repo and whether src/ has uncommitted changes (for rpqueue_new)."""
    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", "-C", REPO, *a], capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": git("rev-parse", "--short", "HEAD") or "?",
            "src_dirty": bool(git("status", "--porcelain", "--", "src"))}


def _mem_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None
