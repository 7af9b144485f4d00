"""Real Redis Cluster and Sentinel deployments on loopback, for tests/cluster.

``RedisCluster6``: six ``redis-server --cluster-enabled yes`` processes joined
by ``redis-cli --cluster create ... --cluster-replicas 1`` (3 primaries, each
with one replica), with a 1 s node timeout so that a killed primary's replica
takes over in about two seconds.

``SentinelSetup``: one primary, one replica and three sentinels watching the
primary as ``mymaster`` (quorum 2, down after 1 s).

Both are built from ``RedisServerProcess`` (redis_server.py), so every node
has its own directory, log file and free loopback port, and never touches a
Redis the developer runs.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis
from redis.crc import key_slot
from redis_server import OptionValue, RedisServerProcess, redis_server_binary

T = TypeVar("T")

SLOTS = 16384


def redis_cli_binary() -> str:
    """redis-cli next to the redis-server in use, else the one on PATH."""
    server = redis_server_binary()
    if server:
        sibling = Path(server).with_name("redis-cli")
        if sibling.exists():
            return str(sibling)
    found = shutil.which("redis-cli")
    if found is None:
        raise RuntimeError("redis-cli is needed to create the test cluster and was not found "
                           "on PATH (it ships with redis-server: apt-get install redis-server)")
    return found


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free loopback port whose cluster bus port (+10000) is free too.

    A cluster node's port must be <= 55535 because its bus listens 10000
    above, which the kernel's ephemeral range (what free_port() hands out)
    usually is not.
    """
    for _ in range(1000):
        port = random.randint(20000, 45000)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _start_node(node: RedisServerProcess, attempts: int = 5) -> None:
    """Start a cluster node on a fresh port pair, retrying if one was taken meanwhile."""
    for attempt in range(attempts):
        node._port = cluster_port()
        try:
            node.start()
            return
        except RuntimeError:
            if attempt == attempts - 1:
                raise


def _wait(predicate: Callable[[], T], timeout: float, what: str | Callable[[], str],
          interval: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (redis.RedisError, OSError):
            value = None  # type: ignore[assignment]
        if value:
            return value
        if time.monotonic() >= deadline:
            text = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for {text}")
        time.sleep(interval)


@dataclass(frozen=True)
class NodeView:
    """One line of CLUSTER NODES."""

    id: str
    port: int
    flags: frozenset[str]
    master_id: str  # "-" for a primary
    slots: tuple[tuple[int, int], ...]

    @property
    def is_primary(self) -> bool:
        return "master" in self.flags and not self.failed

    @property
    def failed(self) -> bool:
        return "fail" in self.flags or "fail?" in self.flags

    def owns(self, slot: int) -> bool:
        return any(lo <= slot <= hi for lo, hi in self.slots)


def _raw(node: RedisServerProcess, *command: str, password: str | None = None) -> str:
    """A CLUSTER subcommand's reply as the server's text (redis-py would parse it)."""
    c = node.client(socket_timeout=5, password=password)
    try:
        for name in (" ".join(command[:2]), command[0]):
            c.response_callbacks.pop(name, None)
        reply = c.execute_command(*command)
    finally:
        c.close()
    return reply.decode() if isinstance(reply, bytes) else str(reply)


def parse_cluster_nodes(raw: str) -> list[NodeView]:
    out = []
    for line in raw.strip().splitlines():
        parts = line.split()
        addr = parts[1].split("@", 1)[0]
        slots = []
        for spec in parts[8:]:
            if spec.startswith("["):
                continue  # a slot being migrated
            lo, _, hi = spec.partition("-")
            slots.append((int(lo), int(hi or lo)))
        out.append(NodeView(parts[0], int(addr.rsplit(":", 1)[1]),
                            frozenset(parts[2].split(",")), parts[3], tuple(slots)))
    return out


class RedisCluster6:
    """A 3-primary / 3-replica Redis Cluster of real processes on 127.0.0.1."""

    NODE_OPTIONS: dict[str, OptionValue] = {
        "cluster-enabled": "yes",
        "cluster-config-file": "nodes.conf",
        # Fast failure detection: a replica takes over ~2 s after its
        # primary dies instead of the default ~15 s.
        "cluster-node-timeout": 1000,
        "appendonly": "no",
        # Replicas sync at once instead of after the 5 s diskless-sync delay.
        "repl-diskless-sync-delay": 0,
    }

    def __init__(self, base_dir: str | Path, options: Mapping[str, OptionValue] | None = None,
                 size: int = 6, replicas: int = 1, password: str | None = None) -> None:
        self.base_dir = Path(base_dir)
        # Set once the nodes run (RedisServerProcess probes them without auth).
        self.password = password
        opts = dict(self.NODE_OPTIONS)
        opts.update(options or {})
        self.replicas = replicas
        self.nodes = [RedisServerProcess(self.base_dir / f"node{i}", opts) for i in range(size)]

    # -- lifecycle -----------------------------------------------------------

    def start(self, timeout: float = 30.0) -> RedisCluster6:
        try:
            for node in self.nodes:
                _start_node(node)
                if self.password:
                    c = node.client()
                    try:
                        c.config_set("masterauth", self.password)
                        c.config_set("requirepass", self.password)
                    finally:
                        c.close()
            auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
            cmd = [redis_cli_binary(), *auth, "--cluster", "create",
                   *(f"127.0.0.1:{n.port}" for n in self.nodes),
                   "--cluster-replicas", str(self.replicas), "--cluster-yes"]
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            if done.returncode != 0 or "[OK] All 16384 slots covered" not in done.stdout:
                raise RuntimeError(f"redis-cli --cluster create failed ({done.returncode}):\n"
                                   f"{done.stdout}\n{done.stderr}")
            self.wait_ok(timeout)
            # Replicas must be attached and synced before anyone relies on a
            # failover (a replica without data would not be promoted).
            self.wait_replicas_synced(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def running(self) -> list[RedisServerProcess]:
        return [n for n in self.nodes if n.is_running()]

    # -- addresses and clients -----------------------------------------------

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return "redis+cluster://" + auth + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def node_client(self, node: RedisServerProcess, **kwargs: Any) -> redis.Redis:
        """A plain client of one node (with the cluster's password, if any)."""
        kwargs.setdefault("password", self.password)
        return node.client(**kwargs)

    def client(self, **kwargs: Any) -> redis.RedisCluster:
        from redis.cluster import ClusterNode

        kwargs.setdefault("password", self.password)
        kwargs.setdefault("socket_timeout", 10.0)
        kwargs.setdefault("socket_connect_timeout", 5.0)
        nodes = [ClusterNode("127.0.0.1", n.port) for n in self.running()]
        return redis.RedisCluster(startup_nodes=nodes, **kwargs)

    def node_by_port(self, port: int) -> RedisServerProcess:
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(port)

    # -- topology ------------------------------------------------------------

    def view(self, node: RedisServerProcess | None = None) -> list[NodeView]:
        """CLUSTER NODES as seen by ``node`` (default: the first running one)."""
        return parse_cluster_nodes(_raw(node or self.running()[0], "CLUSTER", "NODES",
                                        password=self.password))

    def primaries(self) -> list[RedisServerProcess]:
        """Running nodes that are primaries (owning slots) right now."""
        by_port = {v.port: v for v in self.view()}
        return [n for n in self.running()
                if n.port in by_port and by_port[n.port].is_primary and by_port[n.port].slots]

    def primary_for_slot(self, slot: int) -> RedisServerProcess:
        for v in self.view():
            if v.is_primary and v.owns(slot):
                return self.node_by_port(v.port)
        raise LookupError(f"no live primary owns slot {slot}")

    def primary_for_key(self, key: str | bytes) -> RedisServerProcess:
        return self.primary_for_slot(key_slot(key.encode() if isinstance(key, str) else key))

    def replica_of(self, primary: RedisServerProcess) -> RedisServerProcess:
        views = self.view()
        pid = next(v.id for v in views if v.port == primary.port)
        for v in views:
            if v.master_id == pid and not v.failed:
                return self.node_by_port(v.port)
        raise LookupError(f"no replica of the primary on port {primary.port}")

    def state_ok(self) -> bool:
        """Every running node says cluster_state:ok and agrees all slots are covered."""
        for node in self.running():
            text = _raw(node, "CLUSTER", "INFO", password=self.password)
            if "cluster_state:ok" not in text or f"cluster_slots_ok:{SLOTS}" not in text:
                return False
        return True

    def wait_ok(self, timeout: float = 30.0) -> None:
        _wait(self.state_ok, timeout, "cluster_state:ok on every node")

    def wait_replicas_synced(self, timeout: float = 30.0) -> None:
        def synced() -> bool:
            views = self.view()
            replicas = [v for v in views if "slave" in v.flags]
            if len(replicas) < len(self.nodes) - len([v for v in views if v.slots]):
                return False
            for v in replicas:
                c = self.node_client(self.node_by_port(v.port), socket_timeout=5,
                                     decode_responses=True)
                try:
                    info = c.info("replication")
                finally:
                    c.close()
                if info.get("master_link_status") != "up":
                    return False
            return True

        _wait(synced, timeout, "every replica attached and in sync")

    def wait_promoted(self, old_primary: RedisServerProcess,
                      replica: RedisServerProcess | None = None,
                      timeout: float = 30.0) -> RedisServerProcess:
        """After killing ``old_primary``: wait until its replica (found in the
        other nodes' view unless given) has promoted itself; returns it.

        Returns as soon as the replica says it is a primary, which is when it
        starts accepting writes for the slots, not when every node has heard.
        """
        if replica is None:
            views = self.view()
            old_id = next(v.id for v in views if v.port == old_primary.port)
            replica = self.node_by_port(next(v.port for v in views if v.master_id == old_id))

        def promoted() -> RedisServerProcess | None:
            me = next(v for v in self.view(replica) if "myself" in v.flags)
            return replica if "master" in me.flags and me.slots else None

        return _wait(promoted, timeout, f"the replica on port {replica.port} to take over "
                     f"from port {old_primary.port}", interval=0.01)

    # -- data ----------------------------------------------------------------

    def flushall(self) -> None:
        for node in self.primaries():
            c = self.node_client(node)
            try:
                c.flushall()
                c.script_flush()
            finally:
                c.close()

    def queue_names_on_distinct_primaries(self, count: int = 3, prefix: str = "q",
                                          tag: Callable[[str], str] | None = None,
                                          ) -> list[str]:
        """``count`` queue names (``prefix0``, ``prefix1``...) whose hash tags hash
        to slots owned by ``count`` different primaries."""
        from rpqueue.storage.keys import Keys

        keys = Keys()
        owner_of = {}
        for v in self.view():
            if v.is_primary:
                for lo, hi in v.slots:
                    owner_of[(lo, hi)] = v.port
        names: list[str] = []
        used: set[int] = set()
        for i in range(10_000):
            name = f"{prefix}{i}"
            key = keys.queue(name).ready if tag is None else tag(name)
            slot = key_slot(key.encode())
            port = next(p for (lo, hi), p in owner_of.items() if lo <= slot <= hi)
            if port not in used:
                used.add(port)
                names.append(name)
                if len(names) == count:
                    return names
        raise LookupError(f"could not spread {count} queues over distinct primaries")

    def commandstats(self, nodes: Iterable[RedisServerProcess] | None = None) -> dict[str, int]:
        """INFO commandstats summed over ``nodes`` (default: the primaries): {cmd: calls}."""
        total: dict[str, int] = {}
        for node in (self.primaries() if nodes is None else nodes):
            c = self.node_client(node, decode_responses=True)
            try:
                stats = c.info("commandstats")
            finally:
                c.close()
            for name, v in stats.items():
                cmd = name.removeprefix("cmdstat_")
                total[cmd] = total.get(cmd, 0) + int(v["calls"])
        return total

    def __enter__(self) -> RedisCluster6:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SentinelProcess(RedisServerProcess):
    """``redis-server sentinel.conf --sentinel``: sentinels need a config file
    they can rewrite, so the settings go to one instead of the command line."""

    def __init__(self, data_dir: str | Path, master_port: int, quorum: int = 2,
                 down_after_ms: int = 1000, failover_timeout_ms: int = 5000,
                 service: str = "mymaster") -> None:
        super().__init__(data_dir)
        self.master_port = master_port
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.service = service

    def _command(self) -> list[str]:
        conf = self.data_dir / "sentinel.conf"
        if not conf.exists():  # restart() keeps what the sentinel learned
            s = self.service
            conf.write_text("\n".join([
                f"port {self.port}",
                "bind 127.0.0.1",
                "daemonize no",
                f"dir {self.data_dir}",
                f"logfile {self.log_path}",
                f"sentinel monitor {s} 127.0.0.1 {self.master_port} {self.quorum}",
                f"sentinel down-after-milliseconds {s} {self.down_after_ms}",
                f"sentinel failover-timeout {s} {self.failover_timeout_ms}",
                f"sentinel parallel-syncs {s} 1",
                "",
            ]))
        return [self.binary, str(conf), "--sentinel"]


class SentinelSetup:
    """One primary, one replica and three sentinels (quorum 2) on 127.0.0.1."""

    SERVICE = "mymaster"

    def __init__(self, base_dir: str | Path,
                 options: Mapping[str, OptionValue] | None = None) -> None:
        self.base_dir = Path(base_dir)
        self.options: dict[str, OptionValue] = {"repl-diskless-sync-delay": 0}
        self.options.update(options or {})
        self.primary = RedisServerProcess(self.base_dir / "primary", self.options)
        self.replica = RedisServerProcess(self.base_dir / "replica", self.options)
        self.sentinels: list[SentinelProcess] = []

    @property
    def servers(self) -> list[RedisServerProcess]:
        return [self.primary, self.replica]

    def start(self, timeout: float = 30.0) -> SentinelSetup:
        try:
            self.primary.start()
            self.replica.start()
            c = self.replica.client()
            try:
                c.execute_command("REPLICAOF", "127.0.0.1", str(self.primary.port))
            finally:
                c.close()
            self.wait_replica_synced(self.replica, timeout)
            self.sentinels = [SentinelProcess(self.base_dir / f"sentinel{i}", self.primary.port)
                              for i in range(3)]
            for s in self.sentinels:
                s.start()
            self.wait_sentinels_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for proc in [*self.sentinels, self.primary, self.replica]:
            proc.stop()

    @property
    def url(self) -> str:
        return ("redis+sentinel://" + ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
                + f"/{self.SERVICE}")

    def sentinel_client(self, i: int = 0) -> redis.Redis:
        return self.sentinels[i].client(decode_responses=True)

    def master_port(self) -> int:
        """The primary's port as the (first live) sentinel reports it."""
        for s in self.sentinels:
            if not s.is_running():
                continue
            c = s.client(decode_responses=True)
            try:
                _host, port = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME",
                                               self.SERVICE)
                return int(port)
            finally:
                c.close()
        raise LookupError("no sentinel is running")

    def current_primary(self) -> RedisServerProcess:
        port = self.master_port()
        return next(s for s in self.servers if s.port == port)

    def client(self, **kwargs: Any) -> redis.Redis:
        """A client of the current primary (as a plain connection; for inspection)."""
        return self.current_primary().client(**kwargs)

    def flushall(self) -> None:
        c = self.client()
        try:
            c.flushall()
            c.script_flush()
        finally:
            c.close()

    @staticmethod
    def wait_replica_synced(replica: RedisServerProcess, timeout: float = 30.0) -> None:
        def synced() -> bool:
            c = replica.client(decode_responses=True)
            try:
                info = c.info("replication")
            finally:
                c.close()
            return info.get("role") == "slave" and info.get("master_link_status") == "up"

        _wait(synced, timeout, f"replica on port {replica.port} in sync")

    def wait_sentinels_ready(self, timeout: float = 30.0) -> None:
        """Every sentinel knows the replica and the two other sentinels (a
        failover needs both)."""
        def ready() -> bool:
            for s in self.sentinels:
                c = s.client(decode_responses=True)
                try:
                    master = c.execute_command("SENTINEL", "MASTER", self.SERVICE)
                    if isinstance(master, list):
                        master = dict(zip(master[::2], master[1::2]))
                finally:
                    c.close()
                if (int(master.get("num-slaves", 0)) < 1
                        or int(master.get("num-other-sentinels", 0)) < len(self.sentinels) - 1
                        or "s_down" in master.get("flags", "")):
                    return False
            return True

        _wait(ready, timeout, "sentinels to discover the replica and each other")

    def wait_failover(self, old_port: int, timeout: float = 30.0) -> RedisServerProcess:
        """After killing the primary: wait until the sentinels name the replica
        and it accepts writes; returns it."""
        def switched() -> RedisServerProcess | None:
            if self.master_port() == old_port:
                return None
            new = self.current_primary()
            c = new.client(decode_responses=True)
            try:
                if c.info("replication").get("role") != "master":
                    return None
            finally:
                c.close()
            return new

        return _wait(switched, timeout, f"sentinels to promote a replica of port {old_port}",
                     interval=0.02)

    def __enter__(self) -> SentinelSetup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
