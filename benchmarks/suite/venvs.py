"""One venv per system under benchmarks/.venvs/, built on first use from the
pinned requirements, and rebuilt when those change (a hash in
``.venvs/<venv>/.bench-stamp``); plus py-spy in our rpqueue's venv for
--profile."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import shlex
import subprocess
import sys

from .common import BENCH, PEERS, PEERS_DIR, PROFILE_PEER, REPO, VENVS, WORK, log


def _sha(*paths_or_text: str) -> str:
    h = hashlib.sha256()
    for item in paths_or_text:
        if os.path.isfile(item):
            with open(item, "rb") as f:
                h.update(f.read())
        else:
            h.update(item.encode())
    return h.hexdigest()


def venv_python(venv: str) -> str:
    return os.path.join(VENVS, venv, "bin", "python")


def ensure_venv(venv: str, requirements: str, editable: bool = False) -> str | None:
    """Create/refresh benchmarks/.venvs/<venv>.  Returns None or an error."""
    path = os.path.join(VENVS, venv)
    stamp_file = os.path.join(path, ".bench-stamp")
    parts = [requirements, sys.version]
    if editable:
        parts += ["editable:" + REPO, os.path.join(REPO, "pyproject.toml")]
    stamp = _sha(*parts)
    try:
        with open(stamp_file) as f:
            if f.read().strip() == stamp and os.path.exists(venv_python(venv)):
                return None
    except OSError:
        pass
    os.makedirs(WORK, exist_ok=True)
    logpath = os.path.join(WORK, "setup-%s.log" % venv)
    log("setting up venv %s (log: %s)" % (venv, os.path.relpath(logpath, REPO)))
    with open(logpath, "w") as logf:
        def run(cmd: list[str]) -> int:
            logf.write("$ %s\n" % shlex.join(cmd))
            logf.flush()
            return subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=900).returncode
        try:
            if not os.path.exists(venv_python(venv)):
                if run([sys.executable, "-m", "venv", path]) != 0:
                    return "python -m venv failed (see %s)" % logpath
            cmd = [venv_python(venv), "-m", "pip", "install", "--disable-pip-version-check",
                   "-q", "-r", requirements]
            if editable:
                cmd += ["-e", REPO]
            if run(cmd) != 0:
                return "pip install failed (see %s)" % os.path.relpath(logpath, REPO)
        except subprocess.TimeoutExpired:
            return "venv setup timed out"
    with open(stamp_file, "w") as f:
        f.write(stamp + "\n")
    return None


def setup_venvs(peer_ids: list[str], with_plot: bool) -> dict[str, str | None]:
    """Set up every needed venv (in parallel).  Returns {venv: error-or-None}."""
    jobs: dict[str, tuple[str, bool]] = {}
    for pid in peer_ids:
        spec = PEERS[pid]
        jobs[spec["venv"]] = (os.path.join(PEERS_DIR, spec["dir"], "requirements.txt"),
                              spec.get("editable", False))
    if with_plot:
        jobs["harness"] = (os.path.join(BENCH, "requirements-harness.txt"), False)
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as ex:
        futs = {venv: ex.submit(ensure_venv, venv, req, ed) for venv, (req, ed) in jobs.items()}
        return {venv: f.result() for venv, f in futs.items()}


def ensure_py_spy() -> tuple[str | None, str | None]:
    """py-spy (pinned in peers/rpqueue_new/requirements-profile.txt) in the
    rpqueue_new venv.  Returns (path or None, error or None)."""
    venv = PEERS[PROFILE_PEER]["venv"]
    req = os.path.join(PEERS_DIR, PEERS[PROFILE_PEER]["dir"], "requirements-profile.txt")
    exe = os.path.join(VENVS, venv, "bin", "py-spy")
    want = None
    with open(req) as f:
        for line in f:
            if line.strip().startswith("py-spy=="):
                want = line.strip().split("==", 1)[1]

    def version() -> str | None:
        try:
            out = subprocess.run([exe, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout.split()
            return out[-1] if out else None
        except (OSError, subprocess.SubprocessError):
            return None

    if os.path.exists(exe) and (want is None or version() == want):
        return exe, None
    logpath = os.path.join(WORK, "setup-py-spy.log")
    log("installing py-spy into venv %s (log: %s)" % (venv, os.path.relpath(logpath, REPO)))
    try:
        with open(logpath, "w") as logf:
            rc = subprocess.run([venv_python(venv), "-m", "pip", "install",
                                 "--disable-pip-version-check", "-q", "-r", req],
                                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                timeout=600).returncode
    except (OSError, subprocess.SubprocessError) as exc:
        return None, "pip install py-spy failed: %s" % exc
    if rc != 0 or not os.path.exists(exe):
        return None, "pip install py-spy failed (see %s)" % os.path.relpath(logpath, REPO)
    return exe, None


