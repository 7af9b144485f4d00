"""Helpers for the security suite: certificates, a TLS-only redis-server,
the ACL line from docs/SECURITY.md, raw queue writes and real workers.

Certificates are made by the ``openssl`` command line tool, so the suite
needs no extra Python package.
"""

from __future__ import annotations

import re
import ssl
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis_server import OptionValue, RedisServerProcess
from support.paths import REPO
from support.paths import SECURITY_TASKMODS as TASKMODS
from support.worker import Stream, WorkerProcess, rpqueue_argv
from support.worker import wait_until as _wait_until

SECURITY_MD = REPO / "docs" / "SECURITY.md"
DEADLINE = 20.0

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = DEADLINE, interval: float = 0.01,
               message: str | Callable[[], str] = "condition") -> T:
    return _wait_until(predicate, timeout, interval, message)


# -- certificates ---------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{done.stderr}")


@dataclass(frozen=True)
class Certs:
    """A test CA, a server and a client certificate it signed, and an unrelated CA."""

    dir: Path
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    # Signed by the CA, but for another host name: hostname checks must refuse it.
    wrong_name_cert: Path
    wrong_name_key: Path


def _ca(dirpath: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
             "-subj", f"/CN=rpqueue test {name}", cwd=dirpath)


def _leaf(dirpath: Path, name: str, ca: str, ext: str) -> None:
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
             cwd=dirpath)
    (dirpath / f"{name}.ext").write_text(ext)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
             cwd=dirpath)


def make_certs(dirpath: Path) -> Certs:
    dirpath.mkdir(parents=True, exist_ok=True)
    _ca(dirpath, "ca")
    _ca(dirpath, "otherca")
    _leaf(dirpath, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
          "extendedKeyUsage=serverAuth\n")
    _leaf(dirpath, "client", "ca", "extendedKeyUsage=clientAuth\n")
    _leaf(dirpath, "wrongname", "ca", "subjectAltName=DNS:redis.example.invalid\n"
          "extendedKeyUsage=serverAuth\n")
    for key in dirpath.glob("*.key"):
        key.chmod(0o600)
    return Certs(dirpath, dirpath / "ca.crt", dirpath / "server.crt", dirpath / "server.key",
                 dirpath / "client.crt", dirpath / "client.key", dirpath / "otherca.crt",
                 dirpath / "wrongname.crt", dirpath / "wrongname.key")


# -- a TLS-only server ------------------------------------------------------------


class TLSRedisServer(RedisServerProcess):
    """redis-server with ``port 0`` (no plain TCP) and ``tls-port`` on the chosen port.

    ``auth_clients`` is the server's ``tls-auth-clients``: "yes" (Redis's
    default) requires a client certificate signed by the CA.
    """

    def __init__(self, data_dir: Path, certs: Certs, auth_clients: str = "no",
                 options: Mapping[str, OptionValue] | None = None,
                 cert: tuple[Path, Path] | None = None) -> None:
        cert_file, key_file = cert or (certs.server_cert, certs.server_key)
        tls: dict[str, OptionValue] = {
            "tls-cert-file": str(cert_file),
            "tls-key-file": str(key_file),
            "tls-ca-cert-file": str(certs.ca),
            "tls-auth-clients": auth_clients,
        }
        tls.update(options or {})
        super().__init__(data_dir, tls)
        self.certs = certs

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.certs.ca}"

    def client(self, **kwargs: Any) -> redis.Redis:
        """An admin client that trusts the test CA (and shows a client certificate)."""
        kwargs.setdefault("socket_timeout", 10.0)
        kwargs.setdefault("socket_connect_timeout", 5.0)
        return redis.Redis(host=self.host, port=self.port, ssl=True,
                           ssl_ca_certs=str(self.certs.ca),
                           ssl_certfile=str(self.certs.client_cert),
                           ssl_keyfile=str(self.certs.client_key), **kwargs)

    def _command(self) -> list[str]:
        args = super()._command()
        # The harness passes "--port N" first: serve N over TLS only.
        assert args[1:3] == ["--port", str(self.port)]
        return [args[0], "--port", "0", "--tls-port", str(self.port), *args[3:]]

    def _spawn(self, timeout: float) -> None:
        command = self._command()
        with open(self.log_path, "ab") as log:
            log.write(f"--- test harness: {' '.join(command)}\n".encode())
            log.flush()
            self._log_offset = log.tell()
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    cwd=self.data_dir)
        self._proc = proc
        self._paused = False
        # The probe skips the host name check: a test may serve a certificate
        # for another name on purpose.
        probe = self.client(socket_connect_timeout=0.5, socket_timeout=1.0,
                            retry=Retry(NoBackoff(), 0), ssl_check_hostname=False)
        deadline = time.monotonic() + timeout
        try:
            while True:
                code = proc.poll()
                if code is not None:
                    self._proc = None
                    raise RuntimeError(f"TLS redis-server exited with {code}:\n{self.log_tail()}")
                try:
                    if probe.info("server").get("process_id") == proc.pid:
                        return
                except (redis.RedisError, OSError, ssl.SSLError):
                    pass
                if time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    self._proc = None
                    raise RuntimeError(f"TLS redis-server did not answer:\n{self.log_tail()}")
                time.sleep(0.02)
        finally:
            probe.close()


# -- the ACL line of docs/SECURITY.md ----------------------------------------------

ACL_MARKER = "<!-- acl-line -->"


def documented_acl_line(user: str = "myapp", password: str = "change-me",
                        prefix: str = "myapp:") -> list[str]:
    """The ``ACL SETUSER`` line of docs/SECURITY.md, as arguments, for this
    user, password and prefix (the doc uses myapp / change-me / myapp:)."""
    text = SECURITY_MD.read_text(encoding="utf-8")
    match = re.search(re.escape(ACL_MARKER) + r"\s*```[a-z]*\n(ACL SETUSER [^\n]+)\n```", text)
    if match is None:
        raise AssertionError(f"no ACL SETUSER line after {ACL_MARKER} in {SECURITY_MD}")
    words = match.group(1).split()
    out = []
    for word in words[2:]:
        if word == "myapp":
            word = user
        elif word == ">change-me":
            word = ">" + password
        elif word.startswith("~myapp:"):
            word = "~" + prefix + word[len("~myapp:"):]
        out.append(word)
    return out


# -- raw writes with the key layout of docs/PROTOCOL.md ------------------------------


def push_raw(client: Any, prefix: str, queue: str, taskid: bytes | str, raw: bytes | str) -> None:
    """Queue one entry with plain commands (PROTOCOL.md "Enqueue with plain commands")."""
    base = f"{prefix}q:{{{queue}}}:"
    pipe = client.pipeline(transaction=True)
    pipe.hset(base + "msg", taskid, raw)
    pipe.rpush(base + "ready", taskid)
    pipe.rpush(base + "wake", "1")
    pipe.ltrim(base + "wake", 0, 0)
    pipe.execute()
    client.zadd(prefix + "queues", {queue: time.time()})


def dead_records(client: Any, prefix: str, queue: str) -> dict[str, dict[str, Any]]:
    """The dead-letter records of a queue as stored (read leniently)."""
    import json

    raw = client.hgetall(f"{prefix}q:{{{queue}}}:deadmsg")
    return {(k.decode("utf-8", "replace") if isinstance(k, bytes) else k):
            json.loads(v.decode("utf-8", "replace") if isinstance(v, bytes) else v)
            for k, v in raw.items()}


# -- real worker processes -----------------------------------------------------------


class Worker(WorkerProcess):
    """A worker (the shared harness) with all its output in one file, run from taskmods/."""

    def __init__(self, argv: Sequence[str], logdir: Path, env: Mapping[str, str] | None = None):
        super().__init__(argv, logdir, env=env, cwd=TASKMODS, merge_output=True)

    def wait_log(self, text: str, timeout: float = DEADLINE, count: int = 1,
                 stream: Stream | None = None) -> str:
        # The security suite's longer default deadline (TLS handshakes, ACL errors).
        return super().wait_log(text, timeout, count, stream)


def worker_argv(url: str | None, prefix: str, module: str = "sec_tasks", *queues: str,
                threads: int = 2, extra: Sequence[str] = ()) -> list[str]:
    """A worker's command line; with ``url`` None it reads $RPQUEUE_URL (which
    keeps a password off the command line, where any local user can read it)."""
    return rpqueue_argv(module, *queues, url=url,
                        args=["--prefix", prefix, "--threads", str(threads), *extra])
