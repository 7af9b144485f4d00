"""The operation verbs: run a server, the demo, a worker or the dashboard;
pause and resume queues; scheduling, weights and limits; flush; migrate."""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

from rich.console import Console

from .. import default_app
from ..run import connection_url
from .common import UsageError, check_queue, emit_json, table
from .show import plain, progress


def cmd_server(args: argparse.Namespace, out: Console) -> int:
    """Run a local persistent Redis server."""
    from ..server import serve_forever

    return serve_forever(args.data_dir, args.port, args.unix_socket)


def cmd_demo(args: argparse.Namespace, out: Console) -> int:
    """Run workers and a mixed workload with live progress."""
    from ..demo import run_demo

    return run_demo(url=connection_url(args), tasks=args.tasks, processes=args.processes,
                    threads=args.threads, console=out, prefix=args.prefix)


def cmd_dashboard(args: argparse.Namespace, out: Console) -> int:
    """Serve the web dashboard."""
    from ..web import serve

    host, _, port = args.listen.rpartition(":") if ":" in args.listen else (
        args.listen, "", "8765")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # [::1]:8765
    if not port.isdigit():
        raise UsageError(f"--listen {args.listen!r}: write ADDRESS or ADDRESS:PORT, "
                         "e.g. 127.0.0.1:8765")
    return serve(connection_url(args), host or "127.0.0.1", int(port), args.token, args.prefix)


def cmd_pause(args: argparse.Namespace, out: Console) -> int:
    """Pause (or, as ``resume``, resume) queues."""
    app = default_app()
    for queue in args.queues:
        check_queue(app.ctx, queue, args.create,
                    "" if args.resume else "add --create to pause it before first use")
    for queue in args.queues:
        if args.resume:
            done = app.resume_queue(queue)
            out.print(plain(f"resumed {queue!r}" if done else f"{queue!r} was not paused"))
        else:
            done = app.pause_queue(queue)
            out.print(plain(f"paused {queue!r}" if done else f"{queue!r} was already paused"))
    return 0


def cmd_scheduling(args: argparse.Namespace, out: Console) -> int:
    """Show or set how workers share out their queues."""
    app = default_app()
    if args.mode is not None:
        app.set_scheduling(args.mode, args.age)
    elif args.age is not None:
        raise ValueError("--age needs a mode: rpqueue scheduling aging --age S")
    current = app.get_scheduling()
    weights = app.queue_weights()
    if args.json:
        emit_json({**current, "weights": weights})
        return 0
    line = f"scheduling: {current['mode']}"
    if current["age"] is not None:
        line += f", age {current['age']:g}s"
    out.print(plain(line))
    if current["mode"] == "weighted" and weights:
        listed = ", ".join(f"{q!r} {w:g}" for q, w in sorted(weights.items()))
        out.print(plain(f"weights: {listed} (others 1)"), soft_wrap=True)
    return 0


def _setting(args: argparse.Namespace, what: str, value: Any, shown: str,
             out: Console) -> int:
    if args.json:
        emit_json({"queue": args.target, what: value})
    else:
        out.print(plain(f"{what} of {args.target!r}: {shown}"))
    return 0


def cmd_priority(args: argparse.Namespace, out: Console) -> int:
    """Show or set a queue's priority."""
    app = default_app()
    check_queue(app.ctx, args.target, args.create, "add --create to set it before first use")
    if args.value is not None:
        app.set_priority(args.target, args.value)
    pri = app.priorities().get(args.target)
    return _setting(args, "priority", pri, "none (served after queues with one)"
                    if pri is None else f"{pri:g}", out)


def cmd_weight(args: argparse.Namespace, out: Console) -> int:
    """Show or set a queue's weight."""
    app = default_app()
    check_queue(app.ctx, args.target, args.create, "add --create to set it before first use")
    if args.value is not None:
        app.set_queue_weight(args.target, args.value)
    weight = app.queue_weights().get(args.target)
    return _setting(args, "weight", 1 if weight is None else weight,
                    "1 (default)" if weight is None else f"{weight:g}", out)


def cmd_limit(args: argparse.Namespace, out: Console) -> int:
    """Show or set a queue's maximum length."""
    app = default_app()
    check_queue(app.ctx, args.target, args.create, "add --create to set it before first use")
    if args.off:
        app.set_queue_limit(args.target, None)
    elif args.max_len is not None:
        app.set_queue_limit(args.target, args.max_len, args.overflow)
    limit = app.queue_limit(args.target)
    return _setting(args, "limit", limit, f"max_len {limit['max_len']}, overflow "
                    f"{limit['overflow']}" if limit else "unbounded", out)


def cmd_flush(args: argparse.Namespace, out: Console) -> int:
    """Wait until the tasks queued now have started (or finished)."""
    import logging
    import re

    app = default_app()
    logger = logging.getLogger("rpqueue")
    # flush_tasks reports "<pending> of <total> tasks pending" in its log
    # every log_every seconds; the bar follows those records.
    pattern = re.compile(r"flush_tasks: (\d+) of (\d+) tasks pending")
    state: dict[str, Any] = {}

    class Follow(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found = pattern.match(record.getMessage())
            if found:
                pending, total = int(found.group(1)), int(found.group(2))
                if "stack" not in state and total:
                    state["stack"] = contextlib.ExitStack()
                    state["update"] = state["stack"].enter_context(
                        progress(out, "tasks pending", total))
                if "update" in state:
                    state["update"](total - pending)

    follow = Follow()
    old_level = logger.level
    if out.is_terminal and not args.json:
        logger.addHandler(follow)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    try:
        done, started, waiting = app.flush_tasks(
            complete=args.complete, force_delayed=args.force_delayed,
            timeout=args.flush_timeout, log_every=0.2 if out.is_terminal and not args.json
            else 0)
    finally:
        logger.removeHandler(follow)
        logger.setLevel(old_level)
        if "stack" in state:
            state["stack"].close()
    if args.json:
        emit_json({"done": done, "started": started, "waiting": waiting})
    else:
        out.print(f"{len(done)} done, {len(started)} started, {len(waiting)} still waiting")
    return 1 if waiting else 0


def cmd_migrate(args: argparse.Namespace, out: Console) -> int:
    """Move tasks queued by rpqueue 0.33 into this layout."""
    from ..legacy import migrate_legacy

    app = default_app()
    total = 0
    if not args.dry_run and out.is_terminal:
        total = migrate_legacy(app.ctx, args.legacy_prefix, True, args.legacy_queue).moved
    with progress(out, "moving tasks", total) as update:
        report = migrate_legacy(app.ctx, args.legacy_prefix, args.dry_run, args.legacy_queue,
                                progress=update)
    moved = table(out, "queue", "waiting", "delayed", "retried", "moved", "left in place",
                  title="would move (dry run, nothing written)" if args.dry_run else "moved")
    for q in report.queues:
        moved.add_row(plain(q.queue), str(q.waiting), str(q.delayed), str(q.retried),
                      str(q.moved), str(len(q.left)))
    out.print(moved)

    def say(line: str) -> None:
        out.print(plain(line), soft_wrap=True)  # one line each, whatever the width

    verb = "would move" if args.dry_run else "moved"
    say(f"{verb} {report.moved} task(s) from {sum(1 for q in report.queues if q.moved)} "
        "queue(s)")
    for q in report.queues:
        if q.dropped:
            say(f"{q.queue}: {'would drop' if args.dry_run else 'dropped'} "
                f"{q.dropped} id(s) without a message (0.33 skips those too)")
        for taskid, reason in sorted(q.left.items()):
            say(f"{q.queue}: left {taskid}: {reason}")
    for queue, pri in sorted(report.priorities.items()):
        say(f"priority of {queue!r}: {pri:g} "
            f"({'would be copied' if args.dry_run else 'copied'})")
    if report.dead_letters:
        say(f"left {report.dead_letters} 0.33 dead letter(s) in place (see docs/MIGRATING.md)")
    for problem in report.problems:
        say(problem)
    return 0


def cmd_worker(args: argparse.Namespace, out: Console) -> int:
    """Run a worker (``python -m rpqueue.run``)."""
    from ..run import run_worker

    return run_worker(args)


def cmd_prune(args: argparse.Namespace, out: Console) -> int:
    """Forget queue names that are empty, unused for --idle seconds and without settings."""
    if not args.idle >= 0:
        raise UsageError(f"--idle must be a number of seconds >= 0, not {args.idle}")
    names = default_app().prune_queues(args.idle, dry_run=args.dry_run)
    if args.json:
        emit_json({"pruned" if not args.dry_run else "would_prune": names})
        return 0
    verb = "would forget" if args.dry_run else "forgot"
    out.print(plain(f"{verb} {len(names)} queue name(s)" + (": " + ", ".join(names[:50])
                                                            if names else "")
                    + (" ..." if len(names) > 50 else "")))
    return 0
