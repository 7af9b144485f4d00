"""``python -m rpqueue.run --module=tasks [options] [queue ...]``: start a worker.

The same options serve ``rpqueue worker``; the connection options are
shared with every verb of the ``rpqueue`` command (``add_connection_options``).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Sequence
from typing import Any

from . import default_app
from .metrics import MetricsUnavailable, check_available
from .worker import execute_tasks

# The dests of the connection options, in the order --help lists them.
CONNECTION_OPTIONS = ("url", "host", "port", "db", "password", "pwprompt", "unixpath",
                      "timeout", "prefix")
DEFAULT_SOCKET_TIMEOUT = 30.0


def _level(name: str) -> int:
    value = logging.getLevelName(name.upper())
    if not isinstance(value, int):
        raise argparse.ArgumentTypeError(f"unknown log level {name!r}")
    return value


def add_connection_options(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    """The options that say which Redis and key prefix to use.

    ``suppress``: for a subcommand's copy of the options. An option left out
    after the verb then sets nothing, so the same option given before the
    verb (on the main parser, which holds the defaults) stands.
    """
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    g = parser.add_argument_group("connection (before or after the command alike)")
    g.add_argument("--url", default=default(None),
                   help="redis://, rediss:// or unix:// URL (default: $RPQUEUE_URL, "
                   "else redis://localhost:6379/0)")
    g.add_argument("--host", default=default(None), help="Redis host (default localhost)")
    g.add_argument("--port", type=int, default=default(None), help="Redis port (default 6379)")
    g.add_argument("--db", type=int, default=default(None), help="Redis database number")
    g.add_argument("--password", default=default(None), help="Redis password")
    g.add_argument("--pwprompt", action="store_true", default=default(False),
                   help="prompt for the Redis password")
    g.add_argument("--unixpath", default=default(None), help="path to Redis's unix socket")
    g.add_argument("--timeout", type=float, default=default(DEFAULT_SOCKET_TIMEOUT),
                   metavar="S", help="Redis socket timeout in seconds (default 30)")
    g.add_argument("--prefix", default=default(None), help="key prefix (default 'rpqueue:')")


def add_worker_options(p: argparse.ArgumentParser) -> None:
    """The options of a worker, for ``python -m rpqueue.run`` and ``rpqueue worker``."""
    p.add_argument("--module", help="module that imports every task to run (required)")
    p.add_argument("--threads", type=int, default=1,
                   help="worker threads per process (default 1)")
    p.add_argument("--processes", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--async-concurrency", type=int, default=100,
                   help="async def tasks run at once per process (default 100)")
    p.add_argument("--wait", type=float, default=1, metavar="S",
                   help="seconds running tasks may take to finish on shutdown (default 1)")
    p.add_argument("--loglevel", type=_level, default=logging.INFO,
                   help="log level (default INFO)")
    p.add_argument("--successlevel", type=_level, default=logging.DEBUG,
                   help="level at which finished tasks are logged (default DEBUG)")
    p.add_argument("--log-json", action="store_true",
                   help="log one JSON object per line (default: plain text)")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus metrics on this port (needs rpqueue[metrics])")
    p.add_argument("--metrics-addr", default="0.0.0.0", metavar="ADDR",
                   help="address the metrics endpoint listens on (default 0.0.0.0)")
    p.add_argument("--max-tasks-per-child", type=int, default=0, metavar="N",
                   help="replace a worker process after it ran N tasks, between tasks "
                        "(default 0: never)")
    p.add_argument("--max-memory-per-child", type=float, default=0, metavar="MIB",
                   help="replace a worker process, between tasks, once its resident memory "
                        "is over MIB mebibytes (default 0: no limit)")
    p.add_argument("queues", nargs="*", metavar="QUEUE",
                   help="queues to serve, highest priority first (default: every known "
                        "queue, in priority order)")


def connection_given(args: argparse.Namespace) -> bool:
    """True when any option other than --url names where Redis is."""
    return any(getattr(args, k, None) is not None
               for k in ("host", "port", "db", "password", "unixpath")) or bool(
        getattr(args, "pwprompt", False))


def connection_url(args: argparse.Namespace) -> str | None:
    """The options as one URL (for the verbs that take a URL: demo, dashboard)."""
    from urllib.parse import quote

    if getattr(args, "url", None) or not connection_given(args):
        return getattr(args, "url", None)
    password = getpass.getpass("Redis password: ") if args.pwprompt else args.password
    auth = f":{quote(password, safe='')}@" if password else ""
    if args.unixpath:
        return f"unix://{auth}{args.unixpath}?db={args.db or 0}"
    return f"redis://{auth}{args.host or 'localhost'}:{args.port or 6379}/{args.db or 0}"


def configure(args: argparse.Namespace) -> None:
    """Point the default app at the Redis the options name.

    Raises ValueError for a URL that cannot be read (a message naming it).
    """
    app = default_app()
    if args.prefix is not None:
        app.set_key_prefix(args.prefix)
    password = args.password
    if args.pwprompt:
        password = getpass.getpass("Redis password: ")
    if args.url:
        if "://" not in args.url:
            raise ValueError(f"--url {args.url!r} has no scheme: write redis://{args.url} "
                             "(or rediss://, unix://)")
        app.set_redis_url(args.url, socket_timeout=args.timeout)
    elif any(v is not None for v in (args.host, args.port, args.db, args.unixpath, password)):
        app.set_redis_connection_settings(
            host=args.host or "localhost", port=args.port or 6379, db=args.db or 0,
            password=password, socket_timeout=args.timeout, unix_socket_path=args.unixpath,
        )


def parser() -> argparse.ArgumentParser:
    """The options of ``python -m rpqueue.run``."""
    p = argparse.ArgumentParser(
        prog="python -m rpqueue.run",
        description="Run rpqueue worker processes. Queues named here are served in the "
                    "order given; with none, every known queue in priority order.",
    )
    add_worker_options(p)
    add_connection_options(p)
    return p


def run_worker(args: argparse.Namespace) -> int:
    """Run a worker as the parsed options say; returns its exit code."""
    if not args.module:
        print("error: --module is required: name the module that imports your tasks, "
              "e.g. python -m rpqueue.run --module=tasks", file=sys.stderr)
        return 2
    if args.threads < 1 or args.processes < 1 or args.async_concurrency < 1:
        print("error: --threads, --processes and --async-concurrency must be at least 1",
              file=sys.stderr)
        return 2
    if args.max_tasks_per_child < 0 or not args.max_memory_per_child >= 0:
        print("error: --max-tasks-per-child and --max-memory-per-child must be at least 0",
              file=sys.stderr)
        return 2
    if args.metrics_port is not None:
        if not 0 <= args.metrics_port <= 65535:
            print("error: --metrics-port must be between 0 and 65535", file=sys.stderr)
            return 2
        try:
            check_available()
        except MetricsUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.log_json:
        from .logs import use_json_logging

        use_json_logging(args.loglevel)
    else:
        logging.basicConfig(level=args.loglevel,
                            format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
    try:
        configure(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # The module must be importable from the directory the worker starts in.
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        __import__(args.module)
    except ImportError as exc:
        print(f"error: cannot import module {args.module!r}: {exc}", file=sys.stderr)
        return 2
    try:
        return execute_tasks(default_app().ctx, args.queues or None, args.threads, args.processes,
                             args.wait, None, success_level=args.successlevel,
                             async_concurrency=args.async_concurrency,
                             metrics_port=args.metrics_port, metrics_addr=args.metrics_addr,
                             max_tasks_per_child=args.max_tasks_per_child,
                             max_memory_per_child=args.max_memory_per_child)
    except MetricsUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m rpqueue.run``: parse the options and run a worker."""
    return run_worker(parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
