"""``python -m rpqueue.run --module=tasks [options] [queue ...]``: start a worker."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Sequence

from . import default_app
from .metrics import MetricsUnavailable, check_available
from .worker import execute_tasks


def _level(name: str) -> int:
    value = logging.getLevelName(name.upper())
    if not isinstance(value, int):
        raise argparse.ArgumentTypeError(f"unknown log level {name!r}")
    return value


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("connection")
    g.add_argument("--url", help="redis://, rediss:// or unix:// URL (default: $RPQUEUE_URL, "
                   "else localhost:6379)")
    g.add_argument("--host", help="Redis host")
    g.add_argument("--port", type=int, help="Redis port")
    g.add_argument("--db", type=int, help="Redis database number")
    g.add_argument("--password", help="Redis password")
    g.add_argument("--pwprompt", action="store_true", help="prompt for the Redis password")
    g.add_argument("--unixpath", help="path to Redis's unix socket")
    g.add_argument("--timeout", type=float, default=30, help="socket timeout in seconds")
    g.add_argument("--prefix", help="key prefix (default 'rpqueue:')")


def configure(args: argparse.Namespace) -> None:
    """Point the default app at the Redis the options name."""
    app = default_app()
    if args.prefix is not None:
        app.set_key_prefix(args.prefix)
    password = args.password
    if args.pwprompt:
        password = getpass.getpass("Redis password: ")
    if args.url:
        app.set_redis_url(args.url, socket_timeout=args.timeout)
    elif any(v is not None for v in (args.host, args.port, args.db, args.unixpath, password)):
        app.set_redis_connection_settings(
            host=args.host or "localhost", port=args.port or 6379, db=args.db or 0,
            password=password, socket_timeout=args.timeout, unix_socket_path=args.unixpath,
        )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m rpqueue.run",
        description="Run rpqueue worker processes. Queues named here are served in the "
                    "order given; with none, every known queue in priority order.",
    )
    p.add_argument("--module", help="module that imports every task to run (required)")
    add_connection_options(p)
    p.add_argument("--threads", type=int, default=1, help="worker threads per process")
    p.add_argument("--processes", type=int, default=1, help="worker processes")
    p.add_argument("--async-concurrency", type=int, default=100,
                   help="async def tasks run at once per process (default 100)")
    p.add_argument("--wait", type=float, default=1,
                   help="seconds running tasks may take to finish on shutdown")
    p.add_argument("--loglevel", type=_level, default=logging.INFO, help="log level")
    p.add_argument("--successlevel", type=_level, default=logging.DEBUG,
                   help="level at which finished tasks are logged")
    p.add_argument("--log-json", action="store_true",
                   help="log one JSON object per line (default: plain text)")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus metrics on this port (needs rpqueue[metrics])")
    p.add_argument("--metrics-addr", default="0.0.0.0", metavar="ADDR",
                   help="address the metrics endpoint listens on (default 0.0.0.0)")
    p.add_argument("queues", nargs="*", help="queues to serve, highest priority first")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.module:
        print("error: --module is required: name the module that imports your tasks, "
              "e.g. python -m rpqueue.run --module=tasks", file=sys.stderr)
        return 2
    if args.threads < 1 or args.processes < 1 or args.async_concurrency < 1:
        print("error: --threads, --processes and --async-concurrency must be at least 1",
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
    configure(args)
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
                             metrics_port=args.metrics_port, metrics_addr=args.metrics_addr)
    except MetricsUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
