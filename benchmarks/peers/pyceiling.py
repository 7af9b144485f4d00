"""Round-trip ceiling seen from Python: one redis-py client, PING in a loop.

    <venv>/bin/python pyceiling.py --url redis://127.0.0.1:PORT/0 --seconds 2

Prints one JSON line. ``client_rps`` is ``Redis.ping()`` (the public client
API, what most code pays per command); ``connection_rps`` is the same loop
on one checked-out connection (``send_command`` + ``read_response``), below
the client's per-command wrappers: the floor of what a library that holds
its own connection, as rpqueue's execute() does, can reach. Both use the
hiredis reply parser when it is installed (``hiredis`` says whether it was).
"""
import argparse
import json
import sys
import time

import redis

try:
    from redis.utils import HIREDIS_AVAILABLE
except ImportError:  # pragma: no cover
    HIREDIS_AVAILABLE = None


def loop(fn, seconds):
    for _ in range(1000):  # warm-up
        fn()
    n = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        for _ in range(100):
            fn()
        n += 100
        now = time.perf_counter()
        if now >= end:
            return n, now - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--connection-seconds", type=float, default=1.0)
    a = ap.parse_args()
    r = redis.Redis.from_url(a.url)
    n, dt = loop(r.ping, a.seconds)
    out = {"client_rps": n / dt, "client_calls": n, "client_seconds": round(dt, 3),
           "hiredis": bool(HIREDIS_AVAILABLE), "redis_py": redis.__version__,
           "python": sys.version.split()[0]}
    if a.connection_seconds > 0:
        conn = r.connection_pool.get_connection()
        try:
            def ping():
                conn.send_command("PING")
                conn.read_response()
            n, dt = loop(ping, a.connection_seconds)
            out.update(connection_rps=n / dt, connection_calls=n, connection_seconds=round(dt, 3))
        finally:
            r.connection_pool.release(conn)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
