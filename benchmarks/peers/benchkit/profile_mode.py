"""--mode profile: where our worker thread's time goes per no-op task
(benchmarks/run.py --profile); the categories are in ../profiling.py, the
times in ../profiling_timing.py, the flame graphs in ../profiling_svg.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any

from .backlog import BacklogMode
from .peer import log
from .workers import PEERS_DIR, Workers, cpu_seconds, pyspy_version


class ProfileMode(BacklogMode):
    _plain: dict[str, Any]  # the drain without a profiler: the totals

    def _wait_first(self, w: Workers, deadline: float) -> None:
        while self.counter.first() is None:
            if not w.alive():
                raise RuntimeError("worker exited early\n" + w.tail())
            if time.time() > deadline:
                raise RuntimeError("no task ran within the time cap\n" + w.tail())
            time.sleep(0.005)

    def _window(self, pid: int) -> tuple[float, int, Any]:
        import profiling_timing
        return time.time(), self.counter.done(), profiling_timing.thread_times(pid)

    def run_profile(self) -> None:
        """Split our worker thread's time per no-op task into categories
        (see profiling.py), from three drains of `--profile-tasks` tasks by 1
        worker process, each on a freshly filled queue (_profiled_drain):

        * with no profiler: the totals (the worker thread's wall, CPU and
          run-queue time per task, profiling.window_timing), untouched by a
          profiler's own CPU use;
        * py-spy `--idle --nonblocking`: every sample, waits included: the
          flame graph and the split of the socket time between the queue's
          calls and the task's INCR;
        * py-spy `--gil`, over twice as many tasks: only samples holding the
          GIL, i.e. running Python: the split of the Python time and the top
          functions.

        When py-spy is missing or cannot attach, a cProfile drain replaces
        the two py-spy ones (`--profiler auto`)."""
        a, p, res = self.args, self.peer, self.result
        n = a.profile_tasks
        res.update(mode="profile", profile_tasks=n)
        self.flush()
        p.setup()
        p.fill(100)
        self.flush()
        self._plain = self._profiled_drain(n, "plain")
        tried = []
        if a.profiler in ("auto", "py-spy"):
            if a.py_spy and os.path.exists(a.py_spy):
                try:
                    self._profile_pyspy(n)
                    return
                except Exception as exc:
                    tried.append("py-spy failed: %s: %s" % (type(exc).__name__,
                                                            str(exc).splitlines()[0][:300]))
                    log(tried[-1])
                    if a.profiler == "py-spy":
                        raise
            else:
                tried.append("py-spy not installed (%s)" % a.py_spy)
                if a.profiler == "py-spy":
                    raise RuntimeError(tried[-1])
        res["fallback_reason"] = "; ".join(tried) or None
        self._profile_cprofile(n)

    def _refill(self, n: int) -> None:
        """An empty database, then 2n tasks: n for the measured window and up
        to n more drained before it starts (worker start-up, py-spy attach)."""
        self.flush()
        self.fill(2 * n)
        self.counter.reset()

    def _wait_done(self, w: Workers, target: int, deadline: float) -> bool:
        """Wait until `target` tasks have run in total. False when the time
        cap passes or the queue ran dry (no progress for 3 s) first."""
        last, last_change = -1, time.time()
        while True:
            done = self.counter.done()
            now = time.time()
            if done >= target:
                return True
            if done != last:
                last, last_change = done, now
            if now > deadline or now - last_change > 3.0:
                return False
            if not w.alive():
                raise RuntimeError("worker exited early\n" + w.tail())
            time.sleep(0.01)

    def _profiled_drain(self, n: int, tag: str, flags: list[str] | None = None,
                        commands: list[list[str]] | None = None) -> dict[str, Any]:
        """Fill, start 1 worker (with `commands` instead of the peer's, for
        cProfile), attach py-spy with `flags` (None: no py-spy) once the
        first task has run and py-spy says it is sampling, then measure the
        window in which the next n tasks run. The worker is stopped after
        the window with tasks still queued, so it is never idle inside it.
        Returns {timing, drain_rate, complete[, stacks, samples, ...]}."""
        import profiling
        import profiling_timing
        a = self.args
        raw = os.path.join(self.workdir, "profile-%s.raw" % tag)
        if os.path.exists(raw):
            os.unlink(raw)
        self._refill(n)
        # a total that is never reached: no task signals the end here
        w = Workers(self.peer, 1, 10 ** 12, self.workdir, "profile-" + tag, commands=commands,
                    counter=self.counter)
        spy = spy_cpu = None
        splog = os.path.join(self.workdir, "py-spy-%s.log" % tag)
        try:
            deadline = w.started + a.profile_timeout
            self._wait_first(w, deadline)
            pid = w.procs[0].pid
            if flags is not None:
                with open(splog, "wb") as logf:
                    spy = subprocess.Popen(
                        [a.py_spy, "record", "--pid", str(pid), "--rate", str(a.profile_rate),
                         *flags, "--subprocesses", "--format", "raw", "--output", raw],
                        stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                        start_new_session=True)
                with open(w.pidfile, "a") as f:
                    f.write("%d\n" % spy.pid)
                ready_by = min(deadline, time.time() + 20)
                while True:
                    with open(splog, "rb") as f:
                        if b"Sampling process" in f.read():
                            break
                    if spy.poll() is not None or time.time() > ready_by:
                        with open(splog, "rb") as f:
                            text = f.read().decode("utf-8", "replace").strip()
                        raise RuntimeError("py-spy did not start sampling (exit %s): %s" % (
                            spy.poll(), text[-500:]))
                    time.sleep(0.01)
            before = self._window(pid)
            complete = self._wait_done(w, before[1] + n, deadline)
            after = self._window(pid)
            if spy is not None:
                spy_cpu = cpu_seconds(spy.pid)
                spy.send_signal(signal.SIGINT)
                try:
                    spy.wait(30)
                except subprocess.TimeoutExpired:
                    spy.kill()
                    spy.wait(5)
        finally:
            if spy is not None and spy.poll() is None:
                spy.kill()
            w.stop()
        timing = profiling_timing.window_timing(before, after)
        out = {"timing": timing, "drain_rate": timing["tasks"] / timing["wall_s"],
               "complete": complete}
        if flags is None:
            log("profile pass %s: drain %.0f/s over %d tasks" % (
                tag, out["drain_rate"], timing["tasks"]))
            return out
        with open(splog, "rb") as f:
            spy_log = f.read().decode("utf-8", "replace")
        if not os.path.exists(raw):
            raise RuntimeError("py-spy wrote nothing (exit %s): %s" % (
                spy.returncode, spy_log.strip()[-500:]))
        worker = profiling.worker_stacks(profiling.read_raw(raw), self.peer.profile_marker)
        out.update(stacks=worker, samples=sum(worker.values()), raw_file=raw,
                   py_spy_log=spy_log.strip().splitlines()[-2:],
                   command="py-spy record %s --rate %d" % (" ".join(flags), a.profile_rate))
        if spy_cpu is not None and after[0] > before[0]:
            # py-spy's own CPU use over its life (attach to stop) / the window
            out["profiler_cpu_share"] = round(spy_cpu / (after[0] - before[0]), 3)
        log("profile pass %s: %d worker samples, drain %.0f/s over %d tasks, %s" % (
            tag, out["samples"], out["drain_rate"], timing["tasks"], out["py_spy_log"]))
        return out

    def _profile_pyspy(self, n: int) -> None:
        import profiling_svg
        import profiling_timing
        a, res = self.args, self.result
        for path in (a.profile_out + ".svg", a.profile_out + "-python.svg"):
            if os.path.exists(path):
                os.unlink(path)
        # --nonblocking: py-spy never stops the worker, which keeps its
        # timing close to the plain pass's
        wall = self._profiled_drain(n, "wall", ["--idle", "--nonblocking"])
        if wall["samples"] < 50:
            raise RuntimeError("py-spy got only %d samples of the worker thread: %s" % (
                wall["samples"], wall["py_spy_log"]))
        # only shares are taken from this pass: py-spy may stop the process
        # for each sample (its default), which gives whole, consistent stacks
        # twice the tasks: only about a third of the time runs Python, and
        # only that is sampled here
        gil = self._profiled_drain(2 * n, "gil", ["--gil"])
        plain = self._plain
        prof = profiling_timing.breakdown_stacks(wall["stacks"], plain["timing"],
                                          gil["stacks"] if gil["samples"] else None)
        prof["drain_rate"] = plain["drain_rate"]
        prof["complete"] = plain["complete"]
        prof["profiler"] = "py-spy %s, two passes at %d samples/s (`--idle --nonblocking`, " \
            "then `--gil`)" % (pyspy_version(a.py_spy), a.profile_rate)
        prof["passes"] = {tag: {k: v for k, v in d.items() if k != "stacks"}
                          for tag, d in (("plain", plain), ("wall", wall), ("gil", gil))}
        prof["profiler_cpu_share"] = wall.get("profiler_cpu_share")
        for tag, d, path, title in (
                ("wall", wall, a.profile_out + ".svg",
                 "%s worker thread draining no-op tasks: all py-spy samples, waits included "
                 "(raw shares, not calibrated: see BENCHMARKS.md)" % self.peer.name),
                ("gil", gil, a.profile_out + "-python.svg",
                 "%s worker thread draining no-op tasks: samples holding the GIL "
                 "(time running Python)" % self.peer.name)):
            if not d["samples"]:
                continue
            try:
                profiling_svg.render_svg(d["stacks"], path, title, running=(tag == "gil"))
                prof.setdefault("svg_files", {})[tag] = path
            except Exception as exc:  # the figures matter more than the picture
                prof["svg_error"] = "%s: %s" % (type(exc).__name__, exc)
        res["profile"] = prof
        log("profile (py-spy): %s" % json.dumps(prof["rows"]))

    def _profile_cprofile(self, n: int) -> None:
        import glob
        import shutil

        import profiling
        import profiling_timing
        res = self.result
        outdir = os.path.join(self.workdir, "cprofile")
        shutil.rmtree(outdir, ignore_errors=True)
        wrapper = os.path.join(PEERS_DIR, "profile_worker.py")
        cmds = [[argv[0], wrapper, outdir, *argv[1:]] for argv in self.peer.worker_commands(1)]
        run = self._profiled_drain(n, "cprofile", commands=cmds)
        files = sorted(glob.glob(os.path.join(outdir, "*.pstats")))
        if not files:
            raise RuntimeError("cProfile wrote no statistics (see %s)" % self.workdir)
        rows = profiling.pstats_rows(files, self.peer.profile_marker)
        prof = profiling_timing.breakdown_pstats(rows, self._plain["timing"])
        prof["drain_rate"] = self._plain["drain_rate"]
        prof["complete"] = self._plain["complete"]
        prof["passes"] = {"plain": self._plain, "cprofile": run}
        prof["profiler"] = "cProfile (wall clock), one profile per thread (profile_worker.py)"
        prof["pstats_files"] = files
        res["profile"] = prof
        log("profile (cProfile): %s" % json.dumps(prof["rows"]))
