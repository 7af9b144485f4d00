"""Worker processes of one phase: launched in their own process groups,
recorded in a pid file (so that the harness can clean up after a crash),
stopped; and a few facts about live processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from .keys import ENV_COUNTER, ENV_TOTAL, ENV_URL
from .peer import Peer

# the peers directory: benchlib and profiling live there, and the workers
# import benchlib from it
PEERS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Workers:
    """Launches worker commands in their own process groups, records the
    groups in a pid file (so the harness can clean up after a crash), and
    stops them."""

    def __init__(self, peer: Peer, processes: int, total: int, workdir: str, tag: str,
                 commands: Sequence[list[str]] | None = None, counter: Any = None) -> None:
        self.peer = peer
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[str] = []
        env = dict(os.environ)
        env[ENV_URL] = peer.url
        env[ENV_TOTAL] = str(total)
        env["PYTHONUNBUFFERED"] = "1"
        peer_dir = os.path.dirname(os.path.abspath(sys.argv[0]))
        env["PYTHONPATH"] = os.pathsep.join(
            [peer_dir, PEERS_DIR] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env.update(peer.worker_env())
        env.pop(ENV_COUNTER, None)
        if counter is not None:
            env.update(counter.env())
        self.pidfile = os.path.join(workdir, "workers.pids")
        for i, argv in enumerate(commands or peer.worker_commands(processes)):
            logpath = os.path.join(workdir, "worker-%s-%d.log" % (tag, i))
            logf = open(logpath, "wb")
            self.logs.append(logpath)
            p = subprocess.Popen(argv, cwd=peer_dir, env=env, stdin=subprocess.DEVNULL,
                                 stdout=logf, stderr=subprocess.STDOUT,
                                 start_new_session=True)
            logf.close()
            self.procs.append(p)
            with open(self.pidfile, "a") as f:
                f.write("%d\n" % p.pid)
        self.started = time.time()

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def stop(self, grace: float = 8.0) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + grace
        for p in self.procs:
            try:
                p.wait(max(0.05, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
        # whatever is left in the groups (stuck leaders, orphaned children)
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.wait(2)
            except subprocess.TimeoutExpired:
                pass

    def tail(self, lines: int = 15) -> str:
        out = []
        for path in self.logs:
            try:
                with open(path, "rb") as f:
                    data = f.read().decode("utf-8", "replace").splitlines()
            except OSError:
                continue
            out.append("--- %s\n%s" % (os.path.basename(path), "\n".join(data[-lines:])))
        return "\n".join(out)



def pyspy_version(exe: str) -> str:
    try:
        out: str = subprocess.run([exe, "--version"], capture_output=True, text=True,
                                  timeout=30).stdout.split()[-1]
        return out
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None

