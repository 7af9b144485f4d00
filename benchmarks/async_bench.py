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

Standard library only, like benchmarks/run.py, whose helpers it reuses: its
own redis-server on a free loopback port, one venv per system under
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
import shlex
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sections

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
WORK = os.path.join(HERE, ".work", "async")
MARK_START, MARK_END = "<!-- async:start -->", "<!-- async:end -->"

K_DONE = "abench:done"
K_FIRST = "abench:t_first"
K_LAST = "abench:t_last"
K_FINISHED = "abench:finished"

ENV_SYSTEM = "ASYNC_BENCH_SYSTEM"
ENV_URL = "ASYNC_BENCH_URL"
ENV_TOTAL = "ASYNC_BENCH_TOTAL"
ENV_CONCURRENCY = "ASYNC_BENCH_CONCURRENCY"
ENV_SLEEP = "ASYNC_BENCH_SLEEP"
ENV_POLL = "ASYNC_BENCH_POLL_DELAY"

RPQUEUE_QUEUE = "abench"
TASK_NAME = "async_bench.asleep"

# SAQ's pins (pip freeze of saq[redis]==0.26.4 + hiredis; saq 0.26.4 imports
# typing_extensions without declaring it), kept here so the
# script is self-contained; written to .work/async/ for run.py's ensure_venv.
SAQ_REQUIREMENTS = """\
# SAQ, for benchmarks/async_bench.py (venv benchmarks/.venvs/saq)
saq==0.26.4
croniter==7.0.0
hiredis==3.5.0
python-dateutil==4.0.0
redis==7.4.1
typing_extensions==4.16.0
tzdata==2026.6
"""

# id -> venv, requirements, label
SYSTEMS: dict[str, dict[str, Any]] = {
    "rpqueue": {"venv": "rpqueue_new", "req": "peers/rpqueue_new/requirements.txt",
                "editable": True, "label": "rpqueue (this repo), --async-concurrency {c}"},
    "arq": {"venv": "arq", "req": "peers/arq/requirements.txt",
            "label": "arq, max_jobs={c} (default poll_delay 0.5 s)"},
    "arq_fastpoll": {"venv": "arq", "req": "peers/arq/requirements.txt",
                     "label": "arq, max_jobs={c}, poll_delay=0.01"},
    "saq": {"venv": "saq", "req": None, "label": "SAQ, concurrency={c}"},
}


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


# ---------------------------------------------------------------------------
# orchestrator (any python3): venvs, redis-server, repeats, table, BENCHMARKS.md
# ---------------------------------------------------------------------------

def _harness() -> Any:
    sys.path.insert(0, HERE)
    import run as harness  # benchmarks/run.py: venvs, redis-server, machine facts

    return harness


def _run_one(harness: Any, system: str, server: Any, args: argparse.Namespace,
             k: int) -> dict[str, Any]:
    spec = SYSTEMS[system]
    workdir = os.path.join(WORK, system, f"r{k}")
    os.makedirs(workdir, exist_ok=True)
    cmd = [harness.venv_python(spec["venv"]), os.path.abspath(__file__), "--role", "producer",
           "--system", system, "--url", server.url, "--tasks", str(args.tasks),
           "--concurrency", str(args.concurrency), "--sleep", str(args.sleep),
           "--phase-timeout", str(args.phase_timeout), "--workdir", workdir]
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env[ENV_SYSTEM], env[ENV_URL] = system, server.url
    with open(os.path.join(workdir, "producer.stderr"), "w") as err:
        proc = subprocess.run(cmd, cwd=HERE, env=env, stdout=subprocess.PIPE, stderr=err,
                              stdin=subprocess.DEVNULL, text=True, start_new_session=True,
                              timeout=args.phase_timeout + 300)
    harness.cleanup_workers(workdir)
    for line in reversed(proc.stdout.strip().splitlines()):
        try:
            out: dict[str, Any] = json.loads(line)
            return out
        except ValueError:
            continue
    return {"ok": False, "error": f"producer exit {proc.returncode}; see "
                                  f"{os.path.relpath(workdir, REPO)}/producer.stderr"}


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:,.0f}"


def _table(report: dict[str, Any]) -> list[str]:
    c = report["config"]["concurrency"]
    lines = ["| system | version | drain (tasks/s), median | min-max | executed | "
             "ceiling: concurrency / sleep | share of ceiling |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    ceiling = c / report["config"]["sleep"]
    for system, res in report["systems"].items():
        label = SYSTEMS[system]["label"].format(c=c)
        rates = [r["rate"] for r in res["runs"] if r.get("ok")]
        if not rates:
            err = next((r.get("error") for r in res["runs"] if r.get("error")), "failed")
            lines.append(f"| {label} | {res.get('version', '?')} | failed: {err} | | | | |")
            continue
        cut = any(not r.get("complete") for r in res["runs"] if r.get("ok"))
        med = statistics.median(rates)
        executed = sorted({r["executed"] for r in res["runs"] if r.get("ok")})
        lines.append(f"| {label} | {res.get('version', '?')} | {_fmt(med)}{' †' if cut else ''}"
                     f" | {_fmt(min(rates))}-{_fmt(max(rates))} | "
                     f"{', '.join(f'{e:,}' for e in executed)} | {_fmt(ceiling)} | "
                     f"{med / ceiling:.0%} |")
    return lines


def _version(harness: Any, system: str) -> str:
    mod = {"rpqueue": "rpqueue", "arq": "arq", "arq_fastpoll": "arq", "saq": "saq"}[system]
    py = harness.venv_python(SYSTEMS[system]["venv"])
    try:
        out = subprocess.run([py, "-c", f"from importlib.metadata import version; "
                              f"print(version({mod!r}))"], capture_output=True, text=True,
                             timeout=60, stdin=subprocess.DEVNULL).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return out or "?"


def markdown(report: dict[str, Any]) -> str:
    cfg, m = report["config"], report["machine"]
    lines = [MARK_START, "## asyncio", "",
             f"Generated by `benchmarks/async_bench.py` on {report['date']} (issue #9). "
             f"{cfg['tasks']:,} tasks, each `async def` awaiting "
             f"`asyncio.sleep({cfg['sleep']:g})` and one Redis INCR, are queued first; then "
             f"ONE worker process drains them at concurrency {cfg['concurrency']}. "
             "Rate = tasks / (end of the last task - start of the first), both stamped in "
             f"Redis by the tasks; median of {cfg['repeat']} runs. Same machine as above "
             f"({m['cpu_cores']} cores, {m['cpu_model']}); a fresh redis-server on loopback.",
             "", "Command:", "", "```", report["command"], "```", ""]
    lines += _table(report)
    lines += ["",
              f"The ceiling is what the sleep alone allows: {cfg['concurrency']} tasks in "
              f"flight, each at least {cfg['sleep'] * 1000:g} ms. Target of issue #9: rpqueue "
              ">= 5,000 tasks/s.",
              "† cut off after the time cap: rate over the tasks that ran. `executed`: "
              "task runs the counter saw in each run (more than the tasks queued: some "
              "ran twice).",
              "",
              "- rpqueue: `python -m rpqueue.run --module=async_bench --async-concurrency=N` "
              "(defaults otherwise: one worker thread takes tasks, several per round trip "
              "while the loop has room, and hands them to the event loop; outcomes are "
              "written in pipelined batches). See docs/ASYNC.md.",
              "- arq: `arq async_bench.ArqWorkerSettings`, `max_jobs=N`, `keep_result=0`, "
              "otherwise defaults. Each poll reads up to `max_jobs` job ids and starts them as "
              "slots free up; the next poll comes what is left of `poll_delay` (0.5 s by "
              "default) later, so the worker runs short of jobs at the end of each batch. "
              "`arq_fastpoll` sets `poll_delay=0.01`.",
              "- SAQ: `saq async_bench.saq_settings`, `concurrency=N`, otherwise defaults.",
              "- Pinned versions: `benchmarks/peers/rpqueue_new/requirements.txt`, "
              "`benchmarks/peers/arq/requirements.txt`, SAQ's in `async_bench.py`.",
              MARK_END]
    return "\n".join(lines) + "\n"


def write_section(path: str, section: str) -> None:
    """Replace our section between the markers, or append it; nothing else changes
    (benchmarks/run.py's part and any other marked section stay as they are)."""
    sections.write_section(path, MARK_START, MARK_END, section)


def orchestrate(args: argparse.Namespace) -> int:
    harness = _harness()
    os.makedirs(WORK, exist_ok=True)
    saq_req = os.path.join(WORK, "saq-requirements.txt")
    with open(saq_req, "w") as f:
        f.write(SAQ_REQUIREMENTS)
    systems = args.systems
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": shlex.join(["python3", "benchmarks/async_bench.py", *args.argv]),
        "config": {"tasks": args.tasks, "concurrency": args.concurrency, "sleep": args.sleep,
                   "repeat": args.repeat, "phase_timeout": args.phase_timeout},
        "machine": harness.machine_facts(), "systems": {}}
    for system in systems:
        spec = SYSTEMS[system]
        req = saq_req if spec["req"] is None else os.path.join(HERE, spec["req"])
        err = harness.ensure_venv(spec["venv"], req, spec.get("editable", False))
        report["systems"][system] = {"runs": [], "setup_error": err}
        if err:
            harness.log(f"{system}: venv failed: {err}")
            report["systems"][system]["runs"].append({"ok": False, "error": err})
    server = harness.RedisServer()
    server.start()
    try:
        for system in systems:
            res = report["systems"][system]
            if res["setup_error"]:
                continue
            res["version"] = _version(harness, system)
            for k in range(args.repeat):
                out = _run_one(harness, system, server, args, k)
                res["runs"].append(out)
                facts = {x: out.get(x) for x in ("complete", "executed", "elapsed_s", "startup_s")}
                harness.log(f"{system} run {k + 1}/{args.repeat}: "
                            + (f"{out['rate']:,.0f} tasks/s {json.dumps(facts)}" if out.get("ok")
                               else f"FAILED {out.get('error')}"))
    finally:
        server.stop()
    print()
    print("\n".join(_table(report)))
    with open(os.path.join(WORK, "latest.json"), "w") as f:
        json.dump(report, f, indent=2)
    if not args.no_markdown:
        write_section(args.markdown, markdown(report))
        harness.log(f"wrote the asyncio section of {os.path.relpath(args.markdown, REPO)}")
    return 0


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
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
