"""Run the dashboard under uvicorn: the entry point of ``rpqueue dashboard``."""

from __future__ import annotations

import ipaddress
import os
import sys

ENV_TOKEN = "RPQUEUE_DASHBOARD_TOKEN"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _allowed_hosts(host: str) -> list[str] | None:
    """Host header names to accept for a server bound to ``host``."""
    from .security import LOOPBACK_HOSTS

    if _is_loopback(host):
        return sorted(LOOPBACK_HOSTS)
    try:
        if ipaddress.ip_address(host.strip("[]")).is_unspecified:
            # Bound to every interface: the names clients will use are not
            # knowable here, so the Host check cannot help.
            return None
    except ValueError:
        pass
    return [*sorted(LOOPBACK_HOSTS), host]


def serve(url: str | None = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          token: str | None = None, prefix: str | None = None) -> int:
    """Serve the dashboard until interrupted; returns a process exit code.

    ``url``: Redis URL (default $RPQUEUE_URL, else localhost:6379).
    ``token``: required of every request when set (default
    $RPQUEUE_DASHBOARD_TOKEN; an empty value means none).
    ``prefix``: rpqueue's key prefix (default ``rpqueue:``).
    """
    try:
        import uvicorn

        from .app import create_app, safe_url
    except ImportError as exc:
        print(f"rpqueue dashboard: {exc}; install it with: pip install 'rpqueue[web]'",
              file=sys.stderr)
        return 2
    from ..app import ENV_URL, RPQueue
    from ..storage.keys import DEFAULT_PREFIX

    if token is None:
        token = os.environ.get(ENV_TOKEN) or None
    elif not token:
        print("rpqueue dashboard: --token must not be empty", file=sys.stderr)
        return 2
    if not 0 <= port <= 65535:
        print(f"rpqueue dashboard: bad port {port}", file=sys.stderr)
        return 2
    rpq = RPQueue("dashboard", DEFAULT_PREFIX if prefix is None else prefix)
    url = url or os.environ.get(ENV_URL)
    try:
        if url:
            rpq.set_redis_url(url)
        app = create_app(rpq, token, allowed_hosts=_allowed_hosts(host))
    except ValueError as exc:
        print(f"rpqueue dashboard: {exc}", file=sys.stderr)
        return 2
    if token is None and not _is_loopback(host):
        print(f"rpqueue dashboard: WARNING: listening on {host} without a token: anyone who "
              f"can reach this port can requeue and delete dead letters. Set --token or "
              f"{ENV_TOKEN}.", file=sys.stderr)
    shown = f"[{host}]" if ":" in host else host
    print(f"rpqueue dashboard on http://{shown}:{port}/ (Redis {safe_url(rpq.describe_connection())}, "
          f"prefix {rpq.prefix!r}{', token required' if token else ''})", file=sys.stderr)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit as exc:
        # uvicorn exits this way when it cannot bind (port in use); the CLI
        # wants an exit code back, not an exception.
        return exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        # uvicorn shuts down cleanly on Ctrl-C, then re-raises the signal;
        # that is the normal way to stop the dashboard, not an error.
        pass
    return 0
