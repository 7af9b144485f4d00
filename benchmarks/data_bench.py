"""Data queue speed: put, get+done, and memory while putting a million items.

Standalone: starts its own redis-server on a free loopback port (the
harness's, benchmarks/suite/server.py), runs each figure a few times, prints them next to the
targets of issue #5 and stops the server. Not a test: numbers depend on the
machine, so nothing here fails a build.

    python benchmarks/data_bench.py [--runs 3] [--items 100000] [--million 1000000]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from suite.server import RedisServer  # noqa: E402

import rpqueue  # noqa: E402
from rpqueue.data import Data  # noqa: E402

PUT_TARGET = 150_000
GET_DONE_TARGET = 100_000


def small_items(n: int) -> list[dict[str, object]]:
    return [{"n": i, "s": "abc"} for i in range(n)]


def best_and_median(runs: int, once: Callable[[], float]) -> tuple[float, float]:
    rates = [once() for _ in range(runs)]
    return max(rates), statistics.median(rates)


def bench_put(app: rpqueue.RPQueue, n: int) -> float:
    app.client.flushall()
    items = small_items(n)
    d = Data("bench-put", app=app)
    start = time.perf_counter()
    d.put_data(items)
    return n / (time.perf_counter() - start)


def bench_get_done(app: rpqueue.RPQueue, n: int) -> float:
    app.client.flushall()
    d = Data("bench-get", vis_timeout=30, app=app)
    d.put_data(small_items(n))
    got = 0
    start = time.perf_counter()
    while True:
        items = d.get_data(1000)
        if not items:
            break
        d.done_data(items)
        got += len(items)
    elapsed = time.perf_counter() - start
    assert got == n, (got, n)
    return n / elapsed


def bench_memory(app: rpqueue.RPQueue, n: int) -> tuple[float, float, float, float]:
    """(seconds, MB held by the returned {id: item}, MB of transient peak above
    it, MB Redis uses) for one put of ``n`` items."""
    app.client.flushall()
    items = small_items(n)
    d = Data("bench-memory", app=app)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    start = time.perf_counter()
    result = d.put_data(items)
    elapsed = time.perf_counter() - start
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(result) == n
    used = int(app.client.info("memory")["used_memory"])
    mb = 1024 * 1024
    return elapsed, (held - base) / mb, (peak - held) / mb, used / mb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--million", type=int, default=1_000_000)
    args = parser.parse_args(argv)

    with RedisServer("data-bench") as server:
        app = rpqueue.new_rpqueue("data-bench", "bench:")
        app.set_redis_url(server.url)
        print(f"redis-server {server.url}, python {sys.version.split()[0]}, "
              f"{args.runs} runs each, small items like {small_items(1)[0]}")

        best, median = best_and_median(args.runs, lambda: bench_put(app, args.items))
        verdict = "ok" if best >= PUT_TARGET else "BELOW TARGET"
        print(f"put_data of {args.items:,} items:      best {best:>9,.0f} items/s, "
              f"median {median:>9,.0f}  (target >= {PUT_TARGET:,}: {verdict})")

        best, median = best_and_median(args.runs, lambda: bench_get_done(app, args.items))
        verdict = "ok" if best >= GET_DONE_TARGET else "BELOW TARGET"
        print(f"get_data(1000)+done_data (leased): best {best:>9,.0f} items/s, "
              f"median {median:>9,.0f}  (target >= {GET_DONE_TARGET:,}: {verdict})")

        rate = bench_put(app, args.million)
        print(f"put_data of {args.million:,} items (untraced): {rate:,.0f} items/s")
        for n in (args.million // 10, args.million):
            elapsed, held, transient, redis_mb = bench_memory(app, n)
            print(f"put_data of {n:>9,} items (traced): {elapsed:6.1f} s; result dict "
                  f"{held:7.1f} MB; transient peak above it {transient:6.1f} MB; "
                  f"Redis {redis_mb:7.1f} MB")
        print("(traced: tracemalloc slows Python down several times.) The transient peak "
              "stays flat as the item count grows tenfold: puts are encoded and sent chunk "
              "by chunk.")
        app.client.flushall()
    return 0


if __name__ == "__main__":
    sys.exit(main())
