"""Every connection option means the same before and after the verb, for
every verb: a matrix over verbs x position, against two real redis-servers
(the session one, "A", and a second, "B") and two key prefixes."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from harness import Workers, wait_until

import rpqueue
from rpqueue import cli
from rpqueue.cli.parser import parser

PREFIX = "pb:"
# Each verb with arguments that only make sense on B under PREFIX (the queue
# "onb" exists there alone, so a verb that went to A, or to the default
# prefix, fails with "unknown queue").
VERBS: dict[str, list[str]] = {
    "info": [],
    "info-queue": ["--queue", "onb"],
    "schedule": ["schedule"],
    "dead": ["dead"],
    "dead-purge": ["dead", "purge", "--yes"],
    "dead-queue": ["dead", "--queue", "onb"],
    "workers": ["workers"],
    "pause": ["pause", "onb"],
    "resume": ["resume", "onb"],
    "scheduling": ["scheduling"],
    "priority": ["priority", "onb", "2"],
    "weight": ["weight", "onb", "3"],
    "limit": ["limit", "onb", "7"],
    "flush": ["flush", "--give-up-after", "0.1"],
    "migrate-legacy": ["migrate-legacy", "--dry-run"],
}
# The verbs whose own work starts processes or servers: checked at the parser.
PARSE_ONLY: dict[str, list[str]] = {
    "worker": ["worker", "--module=basic", "onb"],
    "demo": ["demo", "--tasks", "5"],
    "dashboard": ["dashboard", "--listen", "127.0.0.1:9999"],
}


@pytest.fixture
def server_b(redis_factory: Any) -> Iterator[str]:
    """A second redis-server holding queue "onb" under PREFIX."""
    url: str = redis_factory().url
    b = rpqueue.new_rpqueue("cli-options-b", PREFIX)
    b.set_redis_url(url)
    b.set_priority("onb", 1)
    yield url
    b.client.close()


def commands_seen(client: Any) -> int:
    return int(client.info("stats")["total_commands_processed"])


@pytest.mark.parametrize("position", ["before", "after"])
@pytest.mark.parametrize("name", sorted(VERBS))
def test_connection_options_act_on_the_named_server_wherever_they_stand(
        app: rpqueue.RPQueue, rcli: Any, server_b: str, capsys: pytest.CaptureFixture[str],
        name: str, position: str) -> None:
    options = ["--url", server_b, "--prefix", PREFIX]
    verb = VERBS[name]
    argv = options + verb if position == "before" else verb + options
    if name.startswith("info") and position == "after":
        argv = verb + options  # no verb: "after" is the same command line
    quiet = commands_seen(rcli)
    quiet = commands_seen(rcli) - quiet  # what the reading itself costs
    before = commands_seen(rcli)
    code = cli.main(argv)
    out = capsys.readouterr()
    assert code == 0, out.err
    # Server A (the default app's) saw nothing but our own reading.
    assert commands_seen(rcli) - before == quiet, f"{argv} talked to the wrong server"
    b = rpqueue.new_rpqueue("cli-options-b")
    if name == "pause":
        assert b.is_paused("onb")
    if name == "priority":
        assert b.priorities()["onb"] == 2
    if name == "weight":
        assert b.queue_weights()["onb"] == 3
    if name == "limit":
        assert b.queue_limit("onb") == {"max_len": 7, "overflow": "refuse"}


def test_a_prefix_before_dead_purge_purges_that_prefix_only(
        app: rpqueue.RPQueue, redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The reported accident: --prefix before the verb purged the default prefix."""
    from cli_support import bury

    other = rpqueue.new_rpqueue("cli-options-other", "other:")
    other.set_redis_url(redis_url)
    bury(app, "held", 2)
    bury(other, "held", 1)
    assert cli.main(["--url", redis_url, "--prefix", "other:", "dead", "purge", "--yes"]) == 0
    assert capsys.readouterr().out == "purged 1 dead task(s)\n"
    app.set_key_prefix("rpqueue:")  # the command pointed the default app at "other:"
    assert len(app.read_deadletter(limit=10)) == 2
    assert other.read_deadletter(limit=10) == []


OPTION_SETS = [
    ["--url", "redis://b.example:6380/2", "--prefix", "p:", "--timeout", "4"],
    ["--host", "b.example", "--port", "6380", "--db", "2", "--password", "pw"],
    ["--unixpath", "/tmp/r.sock", "--json"],
]


@pytest.mark.parametrize("options", OPTION_SETS, ids=["url", "host", "unix"])
@pytest.mark.parametrize("name", sorted({**VERBS, **PARSE_ONLY}))
def test_every_option_parses_the_same_before_and_after_the_verb(
        name: str, options: list[str]) -> None:
    verb = {**VERBS, **PARSE_ONLY}[name]
    json_verbs = {"info", "info-queue", "schedule", "dead", "dead-purge", "dead-queue",
                  "workers", "scheduling", "priority", "weight", "limit", "flush"}
    if "--json" in options and name not in json_verbs:
        options = [o for o in options if o != "--json"]
    before = vars(parser().parse_args(options + verb))
    after = vars(parser().parse_args(verb + options))
    assert before == after
    given = argparse.Namespace(**before)
    assert given.timeout == (4 if "--timeout" in options else 30)


def test_json_where_it_means_nothing_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--json", "pause", "q"]) == 2
    assert "--json applies to" in capsys.readouterr().err


def test_the_worker_verb_takes_connection_options_before_it(
        app: rpqueue.RPQueue, server_b: str, tmp_path: Any) -> None:
    workers = Workers(server_b, tmp_path / "w")
    try:
        workers.add([sys.executable, "-m", "rpqueue", "--url", server_b, "--prefix", PREFIX,
                     "worker", "--module=basic", "--loglevel", "INFO", "onb"])
        b = rpqueue.new_rpqueue("cli-options-b")
        wait_until(lambda: len(b.ctx.read_registry()) > 0, message="worker published on B")
        # And nothing was written to A.
        assert app.client.dbsize() == 0
    finally:
        workers.stop_all()


def test_worker_help_and_options_before_queues() -> None:
    done = subprocess.run([sys.executable, "-m", "rpqueue", "worker", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--module" in done.stdout
    assert "(default 1)" in done.stdout  # --threads, --processes, --wait show defaults
    args = parser().parse_args(["worker", "--module=tasks"])
    assert args.module == "tasks" and args.queues == []
