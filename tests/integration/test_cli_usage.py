"""The ``rpqueue`` command as a new user meets it: typos refused with the
known names, destructive steps confirmed, JSON output, empty tables that
say what to do, one-line errors, help that shows defaults."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from cli_support import bury
from harness import Ledger, Workers

import rpqueue
from rpqueue import cli


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The command in this process (stdout captured: not a terminal)."""
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def shell(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("RPQUEUE_URL", None)
    return subprocess.run([sys.executable, "-m", "rpqueue", *argv], capture_output=True,
                          text=True, timeout=60, env=env, input=stdin)


def test_unknown_queue_names_are_refused_closest_first(
        app: rpqueue.RPQueue, redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    for q in ("mail", "billing", "reports"):
        app.set_priority(q, 1)
    code, out, err = run(capsys, "--url", redis_url, "pause", "mial")
    assert code == 2 and out == ""
    assert "unknown queue 'mial'; known: 'mail', " in err and "--create" in err
    assert app.paused_queues() == []
    for argv in (["--queue", "mial"], ["--queue", "mial", "--clear"], ["resume", "mial"],
                 ["priority", "mial", "3"], ["weight", "mial"], ["limit", "mial", "5"],
                 ["dead", "--queue", "mial"]):
        code, out, err = run(capsys, "--url", redis_url, *argv)
        assert code == 2 and "unknown queue 'mial'; known: 'mail'" in err, argv
    assert app.priorities() == {"mail": 1, "billing": 1, "reports": 1}
    assert run(capsys, "--url", redis_url, "priority", "new", "0", "--create")[:2] == (
        0, "priority of 'new': 0\n")


def test_options_that_need_queue_or_no_verb_are_refused(
        app: rpqueue.RPQueue, redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, said in ((["--clear"], "--clear needs --queue"),
                       (["--page", "2"], "--page needs --queue"),
                       (["--queue", "q", "workers"], "--queue applies only without a command")):
        code, _, err = run(capsys, "--url", redis_url, *argv)
        assert code == 2 and said in err, argv


def test_dead_requeue_of_an_unknown_task_name_is_an_error(
        app: rpqueue.RPQueue, redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    bury(app, "billing", 2, name="tasks.charge_card")
    code, _out, err = run(capsys, "--url", redis_url, "dead", "requeue", "--name",
                         "tasks.charge_crad")
    assert code == 2 and "unknown task 'tasks.charge_crad'; known: 'tasks.charge_card'" in err
    assert run(capsys, "--url", redis_url, "dead", "requeue", "--name",
               "tasks.charge_card")[:2] == (0, "requeued 2 dead task(s)\n")


def test_dead_filters_first_then_limits_and_says_what_is_left(
        app: rpqueue.RPQueue, redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    bury(app, "jobs", 5, name="other_task")
    bury(app, "jobs", 3, name="wanted")
    code, out, _ = run(capsys, "--url", redis_url, "dead", "--name", "wanted", "--limit", "2",
                       "--json")
    listed = json.loads(out)
    assert code == 0 and [r["name"] for r in listed["dead"]] == ["wanted", "wanted"]
    assert listed["more"] == 1
    code, out, _ = run(capsys, "--url", redis_url, "dead", "requeue", "--name", "wanted",
                       "--limit", "2")
    assert out == "requeued 2 dead task(s); 1 more match: raise --limit (now 2) or run it again\n"


def test_dead_purge_without_a_filter_asks_or_needs_yes(
        app: rpqueue.RPQueue, redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    bury(app, "jobs", 2)
    # No terminal (stdin is not one under pytest) and no --yes: refused.
    done = shell("--url", redis_url, "dead", "purge", stdin="y\n")
    assert done.returncode == 2 and "add --yes" in done.stderr
    assert len(app.read_deadletter(limit=10)) == 2
    # A filter is a choice already made: no question.
    assert run(capsys, "--url", redis_url, "dead", "purge", "--queue", "jobs")[:2] == (
        0, "purged 2 dead task(s)\n")
    bury(app, "jobs", 1)
    assert run(capsys, "--url", redis_url, "dead", "purge", "--yes")[:2] == (
        0, "purged 1 dead task(s)\n")


def test_json_on_the_reading_verbs(app: rpqueue.RPQueue, redis_url: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    app.set_priority("jobs", 0)
    bury(app, "jobs", 1)
    for argv in ([], ["--queue", "jobs"], ["schedule"], ["workers"], ["dead"],
                 ["scheduling"], ["priority", "jobs"], ["weight", "jobs"], ["limit", "jobs"],
                 ["flush", "--give-up-after", "0"], ["--data"]):
        code, out, err = run(capsys, "--url", redis_url, "--json", *argv)
        assert code == 0, (argv, err)
        json.loads(out)
    code, out, _ = run(capsys, "--url", redis_url, "--json")
    assert json.loads(out)[0]["priority"] == 0


def test_plain_tables_in_priority_order_with_priority_zero(
        app: rpqueue.RPQueue, redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    app.set_priority("later", 5)
    app.set_priority("first", 0)
    app.set_priority("second", 1)
    _code, out, _ = run(capsys, "--url", redis_url)
    lines = out.splitlines()
    assert all(ord(c) < 128 for c in out) and "\x1b" not in out
    names = [line.split("|")[1].strip() for line in lines[3:-1]]
    assert names == ["first", "second", "later"]
    assert lines[3].split("|")[2].strip() == "0"
    assert max(len(line) for line in lines) <= 80


def test_empty_tables_say_what_to_do_next(app: rpqueue.RPQueue, redis_url: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--url", redis_url, "workers")[1] == (
        "no workers: start one with: rpqueue worker --module=YOUR_TASKS_MODULE\n")
    assert run(capsys, "--url", redis_url)[1].startswith("no task queues yet")
    assert run(capsys, "--url", redis_url, "schedule")[1].startswith("no periodic or cron")
    assert run(capsys, "--url", redis_url, "dead")[1] == "no dead letters\n"
    assert run(capsys, "--url", redis_url, "--data")[1].startswith("no data queues yet")


def test_page_past_the_end_and_show_args_at_80_columns(
        app: rpqueue.RPQueue, redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    bury(app, "jobs", 0)
    task: Any = app.registry["cli_support.victim"]
    task.execute("x" * 30, {"nested": list(range(5))}, _queue="jobs")
    code, out, _ = run(capsys, "--url", redis_url, "--queue", "jobs", "--page", "3")
    assert code == 0 and out == (
        "queue 'jobs': priority none, limit none, weight 1\n"
        "1 waiting, 0 delayed, 0 running, 0 dead\n"
        "page 3 is past the end: 'jobs' holds 1 task(s), pages 0 to 0 of 50\n")
    code, out, _ = run(capsys, "--url", redis_url, "--queue", "jobs", "--show-args")
    assert '    args:   ["' + "x" * 30 in out
    assert all(len(line) <= 80 for line in out.splitlines() if "args" not in line)


def test_data_queues_are_listed_with_their_counts(
        app: rpqueue.RPQueue, redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    rpqueue.Data("uploads").put_data([1, 2, 3])
    _code, out, _ = run(capsys, "--url", redis_url, "--data", "--json")
    assert json.loads(out) == [{"queue": "uploads", "available": 3, "invisible": 0}]


@pytest.mark.parametrize("url, said", [
    ("http://localhost:6379", "unsupported Redis URL scheme 'http'"),
    ("localhost:6379", "has no scheme: write redis://localhost:6379"),
])
def test_bad_urls_are_one_line(url: str, said: str) -> None:
    done = shell("--url", url, "workers")
    assert done.returncode == 2
    assert said in done.stderr and len(done.stderr.splitlines()) == 1


def test_redis_answering_is_not_called_unreachable(redis_url: str) -> None:
    done = shell("--url", redis_url.rsplit("/", 1)[0] + "/99", "workers")
    assert done.returncode == 1 and "cannot reach" not in done.stderr
    assert "answered with an error" in done.stderr and "DB index" in done.stderr


def test_a_refused_connection_hints_at_url_and_env(redis_factory: Any) -> None:
    server = redis_factory()
    url = server.url
    server.stop()  # now nothing listens on its port
    done = shell("--url", url, "workers")
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1
    assert "cannot reach Redis at" in done.stderr and "RPQUEUE_URL" in done.stderr


def test_help_shows_defaults_and_names_that_do_not_clash() -> None:
    worker = shell("worker", "--help").stdout
    options = worker[worker.index("options:"):]
    for option in ("--threads THREADS", "--processes PROCESSES", "--wait S"):
        described = options[options.index(option):].split("\n  -")[0]
        assert "(default" in described, described
    dashboard = shell("dashboard", "--help").stdout
    assert "--listen" in dashboard and "address" in dashboard
    flush = shell("flush", "--help").stdout
    assert "--give-up-after" in flush and "socket timeout" in flush  # --timeout is the socket's
    dead = shell("dead", "--help").stdout
    assert "requeue  queue them again" in dead and "purge    delete them" in dead


def test_attempts_is_passed_only_to_functions_that_take_it(
        app: rpqueue.RPQueue, workers: Workers, ledger: Ledger) -> None:
    import attempts_tasks

    workers.start("attempts_tasks", "attempts")
    for t in (attempts_tasks.plain, attempts_tasks.fetch, attempts_tasks.counted,
              attempts_tasks.flexible):
        t.execute(t.name)
    ran = {e["tag"]: e for e in ledger.wait_for(4, "ran")}
    assert set(ran) == {"attempts_tasks.plain", "attempts_tasks.fetch",
                        "attempts_tasks.counted", "attempts_tasks.flexible"}
    assert ran["attempts_tasks.counted"]["attempts"] == 3
    assert ran["attempts_tasks.flexible"]["attempts"] == 3


def test_a_producer_that_cannot_reach_redis_is_told_which(
        app: rpqueue.RPQueue, redis_factory: Any) -> None:
    import redis

    from rpqueue.errors import RedisUnreachable

    server = redis_factory()
    url = server.url
    server.stop()
    other = rpqueue.new_rpqueue("cli-usage-unreachable", "u:")
    other.set_redis_url(url, socket_timeout=2)
    victim: Any = other.task(name="unreachable.victim")(lambda: None)
    with pytest.raises(RedisUnreachable) as caught:
        victim.execute()
    assert url in str(caught.value) and "RPQUEUE_URL" in str(caught.value)
    assert isinstance(caught.value, redis.ConnectionError)
    assert isinstance(caught.value.__cause__, redis.ConnectionError)


def test_the_demo_summary_adds_up(redis_url: str) -> None:
    """Options before the verb reach the demo; sent + retries + periodic runs
    = enqueued = what ran."""
    done = subprocess.run([sys.executable, "-m", "rpqueue", "--url", redis_url, "demo",
                           "--tasks", "40", "--processes", "1"], capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"(\d+) tasks sent \+ (\d+) retries of the flaky task \+ (\d+) periodic "
                      r"runs = (\d+) enqueued; (\d+) ran \((\d+) done", done.stdout)
    assert found, done.stdout
    sent, retries, ticks, enqueued, ran, ok = (int(g) for g in found.groups())
    assert sent == 42 and retries == 2 and ticks >= 3
    assert sent + retries + ticks == enqueued == ran == ok
    total = re.search(r"\|\s*total\s*\|\s*(\d+)\s*\|\s*(\d+)", done.stdout)
    assert total and int(total.group(1)) == enqueued and int(total.group(2)) == ok
