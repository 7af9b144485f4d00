"""Issue #11: JSON only. Nothing in the message path ever unpickles or
evaluates; a worker runs only tasks registered in its process, never an
arbitrary importable name.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

import redis
import sec_tasks
from sec_helpers import REPO, Worker, dead_records, push_raw, wait_until, worker_argv

import rpqueue
from rpqueue.storage.message import encode_call

SRC = REPO / "src" / "rpqueue"
PREFIX = "json:"

# Modules that turn bytes into objects or text into code.
FORBIDDEN_MODULES = {"pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle",
                     "jsonpickle", "yaml", "copyreg"}
FORBIDDEN_BUILTINS = {"eval", "exec", "compile", "__import__"}
IMPORTERS = {"import_module", "__import__"}
# Importing by name is allowed only where the operator names the task module
# at start-up (--module / execute_tasks(module=...)), never per message.
IMPORT_BY_NAME_ALLOWED = {"run.py": {"__import__"}, "worker/process.py": {"import_module"},
                          # Fixed names of Django's Tasks framework, never a message's.
                          "contrib/django/api.py": {"import_module"}}
# The modules a message passes through on its way to the task function.
MESSAGE_PATH = ["storage/message.py", "storage/calls.py", "worker/runner.py", "worker/loop.py",
                "worker/aio.py", "storage/scripts/__init__.py", "admin.py", "data/codec.py",
                "data/live.py", "data/dead.py", "data/records.py"]


def python_sources() -> list[Path]:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 20, files
    return files


def test_no_pickle_marshal_eval_or_exec_anywhere_in_the_package() -> None:
    """A plain-text scan, so that not even a comment or string mentions them."""
    pattern = re.compile(r"\b(pickle|cPickle|marshal|shelve|dill|jsonpickle)\b|\beval\(|"
                         r"\bexec\(|\byaml\.(unsafe_)?load")
    hits = []
    for path in python_sources():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(SRC)}:{n}: {line.strip()}")
    assert hits == []


def test_no_code_from_data_by_ast() -> None:
    """The same by the syntax tree: imports and calls, however spelled."""
    problems = []
    for path in python_sources():
        rel = str(path.relative_to(SRC))
        tree = ast.parse(path.read_text(encoding="utf-8"), rel)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {(node.module or "").split(".")[0]}
            else:
                names = set()
            if names & FORBIDDEN_MODULES:
                problems.append(f"{rel}:{node.lineno} imports {names & FORBIDDEN_MODULES}")
            if isinstance(node, ast.Call):
                func = node.func
                # Builtins by name (re.compile is no builtin compile), importers either way.
                called = (func.id if isinstance(func, ast.Name) and func.id in FORBIDDEN_BUILTINS
                          else func.attr if isinstance(func, ast.Attribute)
                          and func.attr in IMPORTERS else "")
                if called and called not in IMPORT_BY_NAME_ALLOWED.get(rel, ()):
                    problems.append(f"{rel}:{node.lineno} calls {called}()")
    assert problems == []
    for rel in MESSAGE_PATH:
        text = (SRC / rel).read_text(encoding="utf-8")
        assert "import_module" not in text and "__import__" not in text, rel
        assert "getattr(sys.modules" not in text and "sys.modules[" not in text, rel


def test_the_registry_lookup_is_the_only_way_from_a_name_to_a_function() -> None:
    """runner._prepare resolves a message's name in app.registry and nowhere else."""
    text = (SRC / "worker" / "runner.py").read_text(encoding="utf-8")
    assert "self.app.registry.get(message.name)" in text
    tree = ast.parse(text)
    prepare = next(n for n in ast.walk(tree)
                   if isinstance(n, ast.FunctionDef) and n.name == "_prepare")
    calls = {n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
             for n in ast.walk(prepare) if isinstance(n, ast.Call)}
    assert not calls & {"getattr", "import_module", "__import__", "eval", "exec", "locate",
                        "import_string", "resolve_name"}


HOSTILE_NAMES = [
    "os.system", "posix.system", "subprocess.check_call", "subprocess.Popen", "builtins.exec",
    "builtins.eval", "pickle.loads", "sec_tasks.touch",  # importable, in the worker's module
    "sec_tasks.add.__globals__", "sec_tasks.add ", " sec_tasks.add", "SEC_TASKS.ADD",
    "__main__.add", "sec_tasks", "rpqueue.admin.clear_queue", "shutil.rmtree",
]


def test_importable_but_unregistered_names_are_dead_lettered_never_run(
        redis_url: str, tmp_path: Path, default_app: rpqueue.RPQueue,
        start_worker: Callable[..., Worker]) -> None:
    raw = redis.Redis.from_url(redis_url, socket_timeout=10)
    canary = tmp_path / "canary"
    command = f"touch {canary}"
    ids = {}
    for n, name in enumerate(HOSTILE_NAMES):
        taskid = f"hostile-{n}"
        arg = command if "system" in name or "call" in name or "Popen" in name else str(canary)
        args: tuple[object, ...] = (arg,) if name != "subprocess.Popen" else (["touch", str(canary)],)
        if name == "builtins.exec" or name == "builtins.eval":
            args = (f"open({str(canary)!r}, 'w').write('ran')",)
        if name == "pickle.loads":
            args = ("cos\nsystem\n(S'" + command + "'\ntR.",)
        push_raw(raw, PREFIX, "default", taskid, encode_call(taskid, name, "default", args, {}))
        ids[taskid] = name
    default_app.set_redis_url(redis_url)
    default_app.set_key_prefix(PREFIX)
    good = sec_tasks.add.execute(1, 1)

    worker = start_worker(worker_argv(redis_url, PREFIX, "sec_audit", "default"))
    worker.wait_log("serving")
    wait_until(lambda: good.status == "done", message=lambda: worker.log())
    wait_until(lambda: len(dead_records(raw, PREFIX, "default")) == len(ids),
               message=lambda: worker.log())
    records = dead_records(raw, PREFIX, "default")
    assert set(records) == set(ids)
    for taskid, record in records.items():
        assert record["reason"] == "unknown task", record
        assert record["error"] == f"no task named {ids[taskid]!r} in this worker"
    assert good.result == 2
    assert not canary.exists()
    # The audit hook saw nothing run, unpickled or compiled once the worker
    # served, and no import of a module a message named (the standard
    # library may import its own helpers lazily, e.g. a codec for a log line).
    named = {name.strip().rsplit(".", 1)[0] for name in HOSTILE_NAMES} | {
        name.strip().split(".", 1)[0] for name in HOSTILE_NAMES}
    after = worker.log().split("serving", 1)[1]
    seen = []
    for line in after.splitlines():
        if not line.startswith("AUDIT "):
            continue
        _, event, detail = [*line.split(" ", 2), ""][:3]
        if event != "import" or detail.strip("'") in named:
            seen.append(line)
    assert seen == []
    assert worker.alive()
    raw.close()


def test_the_audit_hook_would_see_a_program_start(redis_url: str, tmp_path: Path,
                                                  default_app: rpqueue.RPQueue,
                                                  start_worker: Callable[..., Worker]) -> None:
    """The check above is not vacuous: a registered task that starts a program
    shows up in the same log."""
    default_app.set_redis_url(redis_url)
    default_app.set_key_prefix(PREFIX)
    worker = start_worker(worker_argv(redis_url, PREFIX, "sec_audit", "default"))
    worker.wait_log("serving")
    sec_tasks.run_true.execute()
    worker.wait_log("AUDIT subprocess.Popen")
