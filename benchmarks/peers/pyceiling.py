"""Round-trip ceilings seen from Python: one redis-py client, one command per
round trip, in a loop.

    <venv>/bin/python pyceiling.py --url redis://127.0.0.1:PORT/0 --seconds 2

Prints one JSON line with four rates (calls per second), each loop on the same
single connection, one request in flight:

``client_rps``
    ``Redis.ping()``: the public client API, what most code pays per command
    (pool checkout, per-command wrappers, reply callbacks).
``connection_rps``
    PING on one checked-out connection (``send_command`` +
    ``read_response``), below the client's per-command wrappers.
``evalsha_rps``
    ``EVALSHA <sha> 0`` of a trivial script (``return 1``) on one checked-out
    connection: the same kind of call rpqueue's ``execute()`` makes (one
    EVALSHA per task on a connection the thread holds, rpqueue/storage/direct.py),
    with no script work. This is the ceiling issue #6's "single execute() >=
    80% of the one-client round-trip ceiling" is judged against.
``evalsha_shaped_rps``
    The same trivial script, called with the argument shape of one
    ``execute()`` of a no-op task (7 keys, a 22-character id, a ~100-byte JSON
    message and 3 small arguments). Not a ceiling: the difference to
    ``evalsha_rps`` is what packing and sending execute()'s arguments costs
    with no script work.

All loops use the hiredis reply parser when it is installed (``hiredis`` says
whether it was). ``--connection-seconds`` is the length of each of the three
connection loops.
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

TRIVIAL_SCRIPT = "return 1"
# the argument shape of one execute() of a no-op task as first measured
# (now built by Calls.enqueue in rpqueue/storage/calls.py): 7 keys, then id,
# message, delay ms, meta, size limit
SHAPED_KEYS = ["rpqueue:q:{default}:%s" % k
               for k in ("ready", "msg", "delayed", "meta", "wake", "stats", "leases")]
SHAPED_ARGS = ["CxsYFFofSTmZ2pmA2Q329g",
               '{"v":1,"id":"CxsYFFofSTmZ2pmA2Q329g","name":"bench_tasks.noop",'
               '"queue":"default","args":[],"kwargs":{}}',
               0, "", 1048576]


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
           "python": sys.version.split()[0], "script": TRIVIAL_SCRIPT}
    if a.connection_seconds > 0:
        sha = r.script_load(TRIVIAL_SCRIPT)
        nkeys = len(SHAPED_KEYS)
        conn = r.connection_pool.get_connection()
        try:
            def ping():
                conn.send_command("PING")
                conn.read_response()

            def evalsha():
                conn.send_command("EVALSHA", sha, 0)
                conn.read_response()

            def evalsha_shaped():
                conn.send_command("EVALSHA", sha, nkeys, *SHAPED_KEYS, *SHAPED_ARGS)
                conn.read_response()

            for key, fn in (("connection", ping), ("evalsha", evalsha),
                            ("evalsha_shaped", evalsha_shaped)):
                n, dt = loop(fn, a.connection_seconds)
                out.update({key + "_rps": n / dt, key + "_calls": n,
                            key + "_seconds": round(dt, 3)})
        finally:
            r.connection_pool.release(conn)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
