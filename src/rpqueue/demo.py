"""``rpqueue demo``: workers and a producer on the embedded Redis, with live progress."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .app import RPQueue, new_rpqueue
from .storage.message import new_id

QUEUES = ("high", "low")
TIMEOUT = 180.0


@contextlib.contextmanager
def _redis(url: str | None, console: Console) -> Iterator[str]:
    if url:
        yield url
        return
    from .server import EmbeddedServer

    data_dir = Path.cwd() / ".rpqueue-data" / "demo"
    with EmbeddedServer(data_dir) as server:
        console.print(f"[bold]embedded Redis[/] at {server.url} (data in {data_dir})")
        yield server.url


@contextlib.contextmanager
def _workers(url: str, prefix: str, processes: int, threads: int) -> Iterator[subprocess.Popen[bytes]]:
    cmd = [sys.executable, "-m", "rpqueue.run", "--module=rpqueue.demo_tasks", "--url", url,
           "--prefix", prefix, "--processes", str(processes), "--threads", str(threads),
           "--loglevel", "WARNING", *QUEUES]
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _send(app: RPQueue, tasks: int) -> dict[str, object]:
    from . import demo_tasks

    rng = random.Random(7)
    high = tasks * 2 // 5
    for i in range(high):
        # Single calls, some delayed by up to two seconds.
        delay = rng.uniform(0.5, 2.0) if i % 20 == 0 else None
        demo_tasks.checkout.execute(i, delay=delay)
    demo_tasks.report.execute_many([(i,) for i in range(tasks - high)])
    demo_tasks.flaky.execute("third time lucky")
    total = demo_tasks.add.execute(40, 2)
    return {"add": total}


def run_demo(url: str | None = None, tasks: int = 2000, processes: int = 2, threads: int = 2,
             console: Console | None = None, prefix: str | None = None) -> int:
    """Run the demo; returns an exit code (0 when every task ran).

    ``url``: a Redis to use (default: start an embedded one); ``prefix``:
    the start of the demo's key prefix (a fresh suffix is added each run).
    """
    console = console or Console(highlight=False)
    if tasks < 1:
        console.print("[red]--tasks must be at least 1[/]")
        return 2
    with _redis(url, console) as redis_url:
        prefix = f"{prefix or 'rpqueue-demo:'}{new_id()[:8]}:"
        app = new_rpqueue("demo", prefix)
        app.set_redis_url(redis_url)
        # The tasks module declares its tasks on the default app: point it here too.
        from . import default_app

        default_app().set_redis_url(redis_url)
        default_app().set_key_prefix(prefix)
        with _workers(redis_url, prefix, processes, threads) as workers:
            console.print(f"started {processes} worker process(es) x {threads} thread(s) "
                          f"serving {', '.join(QUEUES)} (high first)")
            started = time.monotonic()
            handles = _send(default_app(), tasks)
            sent = time.monotonic() - started
            console.print(f"sent {tasks + 2} tasks in {sent:.2f}s "
                          f"({(tasks + 2) / max(sent, 1e-9):,.0f}/s)")
            ok = _watch(default_app(), console, workers, started)
            elapsed = time.monotonic() - started
        _summary(default_app(), console, elapsed, handles, tasks + 2)
        app.client.close()
    return 0 if ok else 1


def _pending(app: RPQueue) -> tuple[dict[str, dict[str, int]], int]:
    infos = {q: app.queue_info(q) for q in QUEUES}
    left = sum(i["waiting"] + i["delayed"] + i["running"] for i in infos.values())
    return {q: i["stats"] for q, i in infos.items()}, left


def _watch(app: RPQueue, console: Console, workers: subprocess.Popen[bytes],
           started: float) -> bool:
    client = app.client
    columns = (TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn())
    drained = False
    with Progress(*columns, console=console) as progress:
        bars = {q: progress.add_task(q, total=1, rate="") for q in QUEUES}
        ticks = progress.add_task("periodic", total=3, rate="runs of tick (every 1s)")
        while True:
            stats, left = _pending(app)
            for q in QUEUES:
                done = stats[q].get("done", 0) + stats[q].get("failed", 0)
                rate = done / max(time.monotonic() - started, 1e-9)
                progress.update(bars[q], total=max(stats[q].get("enqueued", 0), 1),
                                completed=done, rate=f"{rate:,.0f} tasks/s")
            n_ticks = int(client.get(app.prefix + "demo:ticks") or 0)
            progress.update(ticks, completed=min(n_ticks, 3))
            flaky_ok = client.get(app.prefix + "demo:flaky_ok") is not None
            if left == 0 and not drained:
                drained = True
                total = sum(stats[q].get("done", 0) + stats[q].get("failed", 0) for q in QUEUES)
                took = time.monotonic() - started
                # Runs, not calls: the flaky task's retries and the periodic
                # runs so far are in it (the summary breaks it down).
                progress.console.print(f"queues drained: {total} task runs in {took:.2f}s "
                                       f"({total / max(took, 1e-9):,.0f} runs/s, delays "
                                       "included)")
            if left == 0 and flaky_ok and n_ticks >= 3:
                return True
            if workers.poll() is not None:
                console.print(f"[red]workers exited with {workers.returncode}[/]")
                return False
            if time.monotonic() - started > TIMEOUT:
                console.print(f"[red]not finished after {TIMEOUT:.0f}s[/]")
                return False
            time.sleep(0.1)


def _summary(app: RPQueue, console: Console, elapsed: float, handles: dict[str, object],
             sent: int) -> None:
    stats, _ = _pending(app)
    table = Table("queue", "enqueued", "done", "failed", "retried", title="rpqueue demo",
                  box=box.HEAVY_HEAD if console.is_terminal else box.ASCII)
    total = {c: 0 for c in ("enqueued", "done", "failed", "retried")}
    for q in QUEUES:
        s = stats[q]
        for c in total:
            total[c] += s.get(c, 0)
        table.add_row(q, *(str(s.get(c, 0)) for c in total))
    table.add_row("total", *(str(n) for n in total.values()))
    console.print(table)
    add: Any = handles["add"]
    flaky_runs = int(app.client.get(app.prefix + "demo:flaky_runs") or 0)
    ticks = int(app.client.get(app.prefix + "demo:ticks") or 0)
    # flaky.retry() queues a new call per retry, so it counts as enqueued
    # (and done) once per run; the periodic task is enqueued once per run too.
    retries = max(flaky_runs - 1, 0)
    runs = total["done"] + total["failed"]
    console.print(f"{sent} tasks sent + {retries} retries of the flaky task + {ticks} "
                  f"periodic runs = {sent + retries + ticks} enqueued; "
                  f"{runs} ran ({total['done']} done, {total['failed']}"
                  f" failed) in {elapsed:.2f}s", soft_wrap=True)
    console.print(f"saved result of add(40, 2): {add.result}")
    console.print(f"flaky task: succeeded on run {flaky_runs} ({retries} retries, made by "
                  "the task calling flaky.retry())")
    console.print(f"periodic tick: {ticks} runs")
