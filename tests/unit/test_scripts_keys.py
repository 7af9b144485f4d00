"""Each script's KEYS are declared once, in its header, and every caller
passes exactly those keys in that order.

A script whose KEYS order drifts from what Python sends reads and writes the
wrong keys without any error, so this is checked without Redis: the
declaration against the file name and the key layout, and the keys every
``Calls`` builder passes against the declaration (resolved here again,
independently of ``LuaScript.keys_for``)."""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

import pytest

from rpqueue.storage import scripts as scripts_mod
from rpqueue.storage.calls import Call, Calls, Taken
from rpqueue.storage.keys import QUEUE_PARTS, Keys, QueueKeys
from rpqueue.storage.scripts import SPECIAL_KEYS, LuaScript, declared_keys, scripts
from rpqueue.storage.wire import FailMode

SCRIPTS_DIR = resources.files("rpqueue.storage.scripts")
NAMES = sorted(p.name[:-4] for p in SCRIPTS_DIR.iterdir() if p.name.endswith(".lua"))
DATA_NAMES = [n for n in NAMES if n.startswith("data_")]
PREFIX = "t:"
QUEUE = "q{1}%"


def _raw(name: str) -> str:
    return SCRIPTS_DIR.joinpath(name + ".lua").read_text(encoding="utf-8")


def _global_keys() -> set[str]:
    return {n for n, v in vars(Keys(PREFIX)).items() if isinstance(v, str) and n != "prefix"}


def _expected(script: LuaScript, k: QueueKeys, **named: str) -> list[str]:
    """The keys a call must pass, from the script's declaration."""
    out = []
    for role in script.roles:
        if role in named:
            out.append(named[role])
        else:
            assert role in QUEUE_PARTS, f"{script.name}: {role!r} must be given by name"
            out.append(getattr(k, role))
    return out


def test_there_are_scripts() -> None:
    assert "take-11" in NAMES and "data_get-8" in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_name_count_matches_declared_keys(name: str) -> None:
    count = int(name.rpartition("-")[2])
    lines = [line for line in _raw(name).splitlines() if line.startswith("-- KEYS")]
    assert len(lines) == count
    assert len(declared_keys(name)) == count


@pytest.mark.parametrize("name", NAMES)
def test_header_is_uniform(name: str) -> None:
    # One key per line, numbered in order, role then TYPE.
    lines = [line for line in _raw(name).splitlines() if line.startswith("-- KEYS")]
    for i, line in enumerate(lines, 1):
        assert re.match(rf"^-- KEYS\[{i}\]\s+[a-z][a-z0-9_]*\s+[A-Z|]+\s+\S", line), line


@pytest.mark.parametrize("name", NAMES)
def test_declared_roles_resolve(name: str) -> None:
    k = Keys(PREFIX).data(QUEUE) if name.startswith("data_") else Keys(PREFIX).queue(QUEUE)
    allowed = set(SPECIAL_KEYS) | _global_keys()
    for role in declared_keys(name):
        if role in QUEUE_PARTS:
            value = getattr(k, role)
            assert isinstance(value, str) and value.startswith(k.base)
        else:
            assert role in allowed, f"{name}: unknown key role {role!r}"


@pytest.mark.parametrize("name", DATA_NAMES)
def test_data_scripts_use_only_queue_parts(name: str) -> None:
    # A data queue has no result or global keys: all resolve on Keys.data(queue).
    k = Keys(PREFIX).data(QUEUE)
    keys = scripts_mod.LuaScript(name).keys_for(k)
    assert keys == [getattr(k, r) for r in declared_keys(name)]
    assert all(key.startswith(f"{PREFIX}d:{{") for key in keys)


@pytest.mark.parametrize("name", NAMES)
def test_body_uses_only_declared_keys(name: str) -> None:
    # The script's own text (includes may serve scripts with more keys).
    body = "\n".join(line.split("--")[0] for line in _raw(name).splitlines())
    used = {int(i) for i in re.findall(r"KEYS\[(\d+)\]", body)}
    assert not used or max(used) <= len(declared_keys(name))


def test_every_script_is_loaded() -> None:
    loaded = {s.name for s in vars(scripts()).values() if isinstance(s, LuaScript)}
    assert loaded == set(NAMES)


def test_shared_lua_only_in_lib() -> None:
    for name in NAMES:
        assert re.fullmatch(r"[a-z_]+-\d+", name), f"{name}.lua is not named <operation>-<keys>"
        for target in re.findall(r"^--@include (\S+)$", _raw(name), re.MULTILINE):
            assert target.startswith("lib/"), f"{name} includes {target}"
            assert SCRIPTS_DIR.joinpath(target).is_file()


def test_bad_headers_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = {
        "skips-2": "-- KEYS[1] ready  LIST  a\n-- KEYS[3] msg  HASH  b\n",
        "shorthand-8": "-- KEYS[1..8] ready, msg\n",
        "short-3": "-- KEYS[1] ready  LIST  a\n-- KEYS[2] msg  HASH  b\n",
    }
    monkeypatch.setattr(scripts_mod, "_read", lambda name: texts[name[:-4]])
    for name in texts:
        with pytest.raises(ValueError):
            declared_keys(name)


def test_keys_for_named_roles() -> None:
    s = scripts()
    k = Keys(PREFIX).queue(QUEUE)
    with pytest.raises(TypeError):
        s.done.keys_for(k)
    with pytest.raises(TypeError):
        s.done.keys_for(k, lock="x")
    with pytest.raises(TypeError):
        s.take.keys_for(k, result="x")
    # Lists without named roles are built once per queue and layout.
    assert s.take.keys_for(k) is s.take.keys_for(k)
    other = Keys("u:").queue(QUEUE)
    assert s.take.keys_for(other)[0] == other.ready
    # With a named role, each call gets its own list.
    a, b = s.done.keys_for(k, result="r1"), s.done.keys_for(k, result="r2")
    assert a[4] == "r1" and b[4] == "r2"


def _calls(prefix: str = PREFIX) -> Calls:
    keys = Keys(prefix)
    return Calls(lambda: keys, lambda: 1000)


def _builders(calls: Calls, k: QueueKeys) -> list[tuple[Call[Any], dict[str, str]]]:
    """One call from every builder, and the keys it names by role."""
    taken = Taken(QUEUE, "id1", b"raw", "tok", b"id1")
    return [
        (calls.enqueue(QUEUE, "id1", "{}", 0, ""), {}),
        (calls.enqueue_many(QUEUE, [("id1", "{}", ""), ("id2", "{}", "")], 0)[0], {}),
        (calls.peek(QUEUE), {}),
        (calls.take(QUEUE, 30), {}),
        (calls.finish_take(QUEUE, taken, "null", 10, 30), {"result": k.result("id1")}),
        (calls.done(QUEUE, b"id2", "tok", "null", 10), {"result": k.result("id2")}),
        (calls.fail(QUEUE, "id1", "tok", "boom", FailMode.RETRY, "error"), {}),
        (calls.release(taken), {}),
        (calls.extend(QUEUE, "id1", "tok", 5), {}),
        (calls.cancel(QUEUE, "id3"), {"result": k.result("id3")}),
        (calls.status(QUEUE, "id1"), {}),
        (calls.clear(QUEUE), {}),
        (calls.progress(QUEUE, "id1", "tok", 1, 2, "", "{}"), {}),
        (calls.task_state(QUEUE, "id1"), {}),
    ]


# Keys a script builds itself from the queue's base (qbase in lib/common.lua):
# per-task state records and progress, and the event stream. Each is a
# QueueKeys name, so it shares the queue's hash tag (one cluster slot).
DERIVED = {"state:": "state", "progress:": "progress", "events": "events"}


@pytest.mark.parametrize("name", NAMES)
def test_derived_keys_are_queue_keys(name: str) -> None:
    body = scripts_mod.source(name)
    for part in re.findall(r"base \.\. '([a-z_:]+)'", body):
        assert part in DERIVED, f"{name}: builds an undocumented key {part!r}"


def test_qbase_gives_the_queue_base() -> None:
    # The Lua pattern '^(.*:)[^:]*$' on any queue key, mirrored here: the
    # base is everything up to the last ':' (part names hold none).
    for queue in (QUEUE, "a:b", "x}{:"):
        k = Keys(PREFIX).queue(queue)
        for part in QUEUE_PARTS:
            key = getattr(k, part)
            assert ":" not in part and key.rpartition(":")[0] + ":" == k.base
        assert k.state("i").startswith(k.base) and k.progress("i").startswith(k.base)


def test_every_task_builder_is_checked() -> None:
    builders = {n for n in vars(Calls) if not n.startswith("_")}
    calls = _calls()
    checked = {c.script for c, _ in _builders(calls, Keys(PREFIX).queue(QUEUE))}
    by_script = {getattr(scripts(), n) for n in builders}
    assert by_script == checked


@pytest.mark.parametrize("prefix", [PREFIX, "rpqueue:"])
def test_builders_pass_declared_keys(prefix: str) -> None:
    calls = _calls(prefix)
    k = Keys(prefix).queue(QUEUE)
    for call, named in _builders(calls, k):
        assert call.keys == _expected(call.script, k, **named), call.script.name
        assert len(call.keys) == int(call.script.name.rpartition("-")[2])
        # One queue, one hash tag: every key is in one cluster slot.
        assert all(key.startswith(f"{prefix}q:{{q%7B1%7D%25}}:") for key in call.keys)


def test_builders_follow_a_prefix_change() -> None:
    current = [Keys("a:")]
    calls = Calls(lambda: current[0], lambda: 0)
    first = calls.take(QUEUE, 1).keys
    current[0] = Keys("b:")
    second = calls.enqueue(QUEUE, "i", "{}", 0, "").keys
    assert first[0].startswith("a:") and all(key.startswith("b:") for key in second)


class _Recorder:
    """A client that records the script calls sent to it."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    def execute_command(self, *args: Any) -> Any:
        self.sent.append(args)
        return 1

    def keys_of(self, script: LuaScript) -> list[Any]:
        (command,) = [c for c in self.sent if c[:2] == ("EVALSHA", script.sha)]
        return list(command[3:3 + command[2]])


def test_lock_release_passes_declared_keys() -> None:
    from rpqueue.locks import SimpleLock

    client = _Recorder()
    lock = SimpleLock(client, "t:lock:x")
    lock.__exit__(None, None, None)
    assert client.keys_of(scripts().release_lock) == ["t:lock:x"]



@pytest.mark.parametrize("name", NAMES)
def test_includes_are_spliced(name: str) -> None:
    assert not re.search(r"^--@include", scripts_mod.source(name), re.MULTILINE)


def test_one_command_form_for_pipelines() -> None:
    from rpqueue.storage.durable import Durability, _commands

    call = _calls().take(QUEUE, 1)
    script = call.script
    assert script.command(call.keys, call.args) == ("EVALSHA", script.sha, 11, *call.keys, *call.args)
    assert script.command(call.keys, call.args, source=True)[:3] == ("EVAL", script.source, 11)
    want = Durability(1, 0.5)
    assert _commands(call, want, sha=True) == [script.command(call.keys, call.args), ("WAIT", 1, 500)]
    assert _commands(call, want, sha=False)[0] == script.command(call.keys, call.args, source=True)


def test_package_data_ships_every_script() -> None:
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parents[2]
    conf = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    globs = conf["tool"]["setuptools"]["package-data"]["rpqueue"]
    pkg = root / "src" / "rpqueue"
    shipped = {p for g in globs for p in pkg.glob(g)}
    assert set(pkg.rglob("*.lua")) <= shipped
