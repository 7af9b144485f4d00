#!/usr/bin/env python3
"""asyncio task throughput: rpqueue's async lane against arq and SAQ (issue #9).

    python3 benchmarks/async_bench.py                  # 10,000 tasks, 3 repeats
    python3 benchmarks/async_bench.py --systems rpqueue --repeat 1
    python3 benchmarks/async_bench.py --no-markdown    # print only

Not a test: the figures depend on the machine. Each task is ``async def``
doing ``await asyncio.sleep(0.01)``; the queue is filled with ``--tasks`` of
them, then ONE worker process is started at concurrency ``--concurrency``
(rpqueue ``--async-concurrency``, arq ``max_jobs``, SAQ ``concurrency``). The
drain rate is tasks / (end of the last task - start of the first), both
recorded by the tasks in Redis, so worker start-up is not counted. Medians
over ``--repeat`` runs.

Standard library only, like benchmarks/run.py, whose harness (benchmarks/suite/)
it reuses: its own redis-server on a free loopback port, one venv per system under
benchmarks/.venvs/ (built on first use from pinned requirements), scratch
files under benchmarks/.work/async/. The script is also the worker module of
every system (``ASYNC_BENCH_SYSTEM`` picks which one it defines) and the
producer run inside each venv (``--role producer``).

Writes the results between ``<!-- async:start -->`` and ``<!-- async:end -->``
in BENCHMARKS.md, or the file given with ``--markdown`` (appended if missing;
the rest of the file is left alone). benchmarks/run.py, which rewrites the rest
of the file, keeps every such marked section as it is.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

# benchmarks/: the harness package (suite), in every role
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from suite.async_systems import (
    ENV_CONCURRENCY,
    ENV_POLL,
    ENV_SLEEP,
    ENV_SYSTEM,
    ENV_TOTAL,
    ENV_URL,
    K_DONE,
    K_FINISHED,
    K_FIRST,
    K_LAST,
    RPQUEUE_QUEUE,
    SYSTEMS,
    TASK_NAME,
)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


# ---------------------------------------------------------------------------
# worker side: the task body, the same for every system
# ---------------------------------------------------------------------------

_aredis: Any = None
_first_done = False


def _client() -> Any:
    """One redis.asyncio client per worker process (its event loop)."""
    global _aredis
    if _aredis is None:
        import redis.asyncio as aredis

        _aredis = aredis.Redis.from_url(os.environ[ENV_URL])
    return _aredis


async def task_body() -> None:
    """Sleep; count the task. The first task a process starts stamps t_first
    (SET NX), the one that completes the count stamps t_last: one INCR round
    trip per task, as in benchmarks/peers/benchlib.task_done."""
    global _first_done
    started = time.time()
    r = _client()
    if not _first_done:
        _first_done = True
        await r.set(K_FIRST, repr(started), nx=True)
    await asyncio.sleep(float(os.environ.get(ENV_SLEEP, "0.01")))
    n = await r.incr(K_DONE)
    if n == int(os.environ[ENV_TOTAL]):
        await r.set(K_LAST, repr(time.time()))
        await r.rpush(K_FINISHED, n)


_system = os.environ.get(ENV_SYSTEM)

if _system == "rpqueue":
    import rpqueue

    @rpqueue.task(queue=RPQUEUE_QUEUE, name=TASK_NAME)
    async def asleep() -> None:
        await task_body()

elif _system in ("arq", "arq_fastpoll"):
    async def arq_asleep(ctx: Any) -> None:
        await task_body()

    class ArqWorkerSettings:
        from arq.connections import RedisSettings

        functions = [arq_asleep]
        redis_settings = RedisSettings.from_dsn(os.environ.get(ENV_URL, "redis://localhost"))
        max_jobs = int(os.environ.get(ENV_CONCURRENCY, "100"))
        poll_delay = float(os.environ.get(ENV_POLL, "0.5"))
        keep_result = 0  # nobody reads them; arq's default keeps each for an hour
        del RedisSettings

    # WARNING instead of arq's default INFO, which logs two lines per job
    ARQ_LOG_CONFIG = {
        "version": 1, "disable_existing_loggers": False,
        "handlers": {"h": {"level": "WARNING", "class": "logging.StreamHandler"}},
        "loggers": {"arq": {"handlers": ["h"], "level": "WARNING"}},
    }

elif _system == "saq":
    async def saq_asleep(ctx: Any) -> None:
        await task_body()

    def saq_settings() -> dict[str, Any]:
        from saq import Queue

        return {"queue": Queue.from_url(os.environ[ENV_URL]), "functions": [saq_asleep],
                "concurrency": int(os.environ.get(ENV_CONCURRENCY, "100"))}


# ---------------------------------------------------------------------------
# producer side (run by each system's venv python): fill, start, measure
# ---------------------------------------------------------------------------

def _fill(system: str, url: str, n: int) -> float:
    t0 = time.perf_counter()
    if system == "rpqueue":
        import rpqueue

        rpqueue.set_redis_url(url)
        asleep.execute_many([((), {}) for _ in range(n)])
    elif system in ("arq", "arq_fastpoll"):
        from arq.connections import RedisSettings, create_pool

        async def fill_arq() -> None:
            pool = await create_pool(RedisSettings.from_dsn(url))
            for start in range(0, n, 500):
                await asyncio.gather(*(pool.enqueue_job("arq_asleep")
                                       for _ in range(min(500, n - start))))
            await pool.aclose()

        asyncio.run(fill_arq())
    elif system == "saq":
        from saq import Queue

        async def fill_saq() -> None:
            queue = Queue.from_url(url)
            await queue.connect()
            for start in range(0, n, 500):
                await asyncio.gather(*(queue.enqueue("saq_asleep")
                                       for _ in range(min(500, n - start))))
            await queue.disconnect()

        asyncio.run(fill_saq())
    return time.perf_counter() - t0


def _worker_argv(system: str, url: str, concurrency: int) -> list[str]:
    bindir = os.path.dirname(sys.executable)
    if system == "rpqueue":
        return [sys.executable, "-m", "rpqueue.run", "--module=async_bench", "--url", url,
                f"--async-concurrency={concurrency}", "--loglevel=WARNING", RPQUEUE_QUEUE]
    if system in ("arq", "arq_fastpoll"):
        return [os.path.join(bindir, "arq"), "async_bench.ArqWorkerSettings",
                "--custom-log-dict", "async_bench.ARQ_LOG_CONFIG"]
    return [os.path.join(bindir, "saq"), "async_bench.saq_settings", "--quiet"]


def producer(args: argparse.Namespace) -> dict[str, Any]:
    import redis

    r = redis.Redis.from_url(args.url)
    r.flushall()
    fill_s = _fill(args.system, args.url, args.tasks)
    env = dict(os.environ)
    env.update({ENV_SYSTEM: args.system, ENV_URL: args.url, ENV_TOTAL: str(args.tasks),
                ENV_CONCURRENCY: str(args.concurrency), ENV_SLEEP: str(args.sleep),
                ENV_POLL: "0.01" if args.system == "arq_fastpoll" else "0.5",
                "PYTHONPATH": os.pathsep.join([HERE, *filter(None, [env.get("PYTHONPATH")])]),
                "PYTHONUNBUFFERED": "1"})
    logpath = os.path.join(args.workdir, "worker.log")
    with open(logpath, "wb") as logf:
        worker = subprocess.Popen(_worker_argv(args.system, args.url, args.concurrency),
                                  cwd=HERE, env=env, stdin=subprocess.DEVNULL, stdout=logf,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    with open(os.path.join(args.workdir, "workers.pids"), "w") as f:
        f.write(f"{worker.pid}\n")
    started = time.time()
    finished = False
    try:
        while time.time() < started + args.phase_timeout:
            if r.blpop([K_FINISHED], timeout=1):
                finished = True
                break
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited with {worker.returncode}; see {logpath}")
        now = time.time()
        done_at_cut = int(r.get(K_DONE) or 0)
        time.sleep(0.3)  # duplicates, if any, show up in the count
        done = int(r.get(K_DONE) or 0)
        first = r.get(K_FIRST)
        if first is None:
            raise RuntimeError(f"no task ran within {args.phase_timeout}s; see {logpath}")
        t_first = float(first)
        if finished:
            elapsed = float(r.get(K_LAST) or now) - t_first
            rate = args.tasks / elapsed
        else:
            elapsed = now - t_first
            rate = done_at_cut / elapsed
            done = done_at_cut
        return {"ok": True, "rate": rate, "complete": finished, "executed": done,
                "elapsed_s": round(elapsed, 4), "startup_s": round(t_first - started, 3),
                "fill_s": round(fill_s, 3)}
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        worker.wait()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--role", choices=["orchestrator", "producer"], default="orchestrator",
                    help=argparse.SUPPRESS)
    ap.add_argument("--system", help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    ap.add_argument("--systems", default="rpqueue,arq,arq_fastpoll,saq",
                    help="comma-separated, of: " + ", ".join(SYSTEMS))
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--sleep", type=float, default=0.01, help="seconds each task sleeps")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--phase-timeout", type=float, default=30.0,
                    help="seconds after the worker starts before a drain is cut off")
    ap.add_argument("--no-markdown", action="store_true", help="do not touch BENCHMARKS.md")
    ap.add_argument("--markdown", default=os.path.join(REPO, "BENCHMARKS.md"),
                    help="the file whose asyncio section is written (default BENCHMARKS.md)")
    args = ap.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    if args.role == "orchestrator":
        args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
        unknown = [s for s in args.systems if s not in SYSTEMS]
        if unknown:
            ap.error(f"unknown systems {unknown}; known: {', '.join(SYSTEMS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "producer":
        try:
            out = producer(args)
        except Exception as exc:  # reported, never a hang
            out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(out) + "\n")
        return 0 if out.get("ok") else 1
    # orchestrator only: the producers and workers run in the systems' venvs
    from suite.async_orchestrate import orchestrate

    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
