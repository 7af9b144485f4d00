"""What an adapter provides: a subclass of :class:`Peer` per system."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any


def log(*args: Any) -> None:
    print("[%s %.3f]" % (os.path.basename(sys.argv[0]), time.time()), *args,
          file=sys.stderr, flush=True)


class Peer:
    """What an adapter provides.  Subclasses override the methods below."""

    name = "?"
    version = "?"
    batch_api: str | None = None  # a short description of the batch API, or None
    notes: list[str] = []

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        self.url = url
        self.args = args

    # producer calls -----------------------------------------------------
    def setup(self) -> None:
        pass

    def enqueue_noop(self) -> None:
        raise NotImplementedError

    def enqueue_noops(self, n: int) -> None:
        """n single enqueue calls; override when a loop needs special care
        (asyncio)."""
        f = self.enqueue_noop
        for _ in range(n):
            f()

    def batch_input(self, n: int) -> Any:
        """The argument list the batch API takes for n no-op calls, built
        before the timer of the batch phase starts (None: nothing to build)."""
        return None

    def enqueue_batch(self, n: int, prepared: Any = None) -> None:
        """Enqueue n no-op tasks through the peer's batch API, in one call;
        `prepared` is what batch_input(n) returned, or None (build it)."""
        raise NotImplementedError

    def enqueue_stamp(self) -> None:
        raise NotImplementedError

    # backlog phase: the fastest way this system has to queue many no-ops
    fill_api: str | None = None  # description; None: the batch API if any, else single calls

    def fill(self, n: int) -> None:
        """Queue n no-op tasks as fast as the system allows (backlog set-up,
        not a reported rate). Called in chunks of at most 10,000."""
        if self.batch_api:
            self.enqueue_batch(n)
        else:
            self.enqueue_noops(n)

    def describe_fill(self) -> str:
        return self.fill_api or self.batch_api or "single calls"

    # profile phase: a (file suffix, function name) that only the worker
    # thread's stacks contain, e.g. ("rpqueue/worker/loop.py", "run")
    profile_marker: tuple[str, str] | None = None

    # workers -------------------------------------------------------------
    def worker_commands(self, processes: int) -> list[list[str]]:
        """List of argv lists, one per OS process to launch, so that in total
        `processes` worker processes run, each at concurrency 1."""
        raise NotImplementedError

    def worker_env(self) -> dict[str, str]:
        return {}

    def close(self) -> None:
        pass
