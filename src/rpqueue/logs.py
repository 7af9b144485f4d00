"""Worker logging: plain text by default, JSON lines with ``--log-json``.

A JSON line is one object per event::

    {"time": "2026-11-28T05:08:19.123Z", "level": "ERROR", "logger": "rpqueue.worker",
     "pid": 4242, "thread": "rpqueue-worker-0", "message": "task t.send (ab12) in queue mail
     raised", "task": "t.send", "id": "ab12", "queue": "mail", "exc": "Traceback ..."}

Structured fields (``task``, ``id``, ``queue`` and a few more, see FIELDS)
come from, in order: ``extra=`` given to the logging call; the task running
in the logging thread or coroutine (``rpqueue.current_task()``), so lines
a task logs itself carry them too; and the arguments of the worker's own
messages about a task. Task arguments (payloads) are never among them.

Every line is ASCII: JSON escapes control characters and the line
feeds of tracebacks, and non-ASCII text is written as ``\\uXXXX``, so a
task name or message cannot forge or break lines or reach a terminal raw.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
import threading
import types
from typing import Any

from .worker.state import current_task

# Record attributes copied into the JSON object when present.
FIELDS = ("task", "id", "queue", "reason", "delay", "took", "limit", "worker")

# The worker's own messages about a task (worker/runner.py, limits.py, aio.py):
# which argument is which field. Keep in step with those modules.
_WORKER_MESSAGES: dict[str, tuple[str, ...]] = {
    "task %s (%s) in queue %s raised": ("task", "id", "queue"),
    "task %s (%s) done in %.4fs": ("task", "id", "took"),
    "task %s (%s) finished after its lease was lost; another worker owns it now":
        ("task", "id"),
    "dead-lettering task %s in queue %s: %s": ("id", "queue", "reason"),
    "dead-lettering task %s in queue %s: unknown task %s": ("id", "queue", "task"),
    "task %s (%s) passed its soft time limit of %ss": ("task", "id", "limit"),
    "task %s (%s) passed its time limit of %ss; stopping it": ("task", "id", "limit"),
    "task %s (%s) is stuck past its time limit; restarting this worker process":
        ("task", "id"),
    "task %s (%s) is stuck past its time limit and holds its thread; run the worker with "
    "--processes to have such processes replaced": ("task", "id"),
    "aborting task %s (%s)": ("task", "id"),
    "reporting async task %s failed": ("id",),
}


class TaskFields(logging.Filter):
    """Adds ``task``, ``id`` and ``queue`` to records that lack them (never filters out)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = record.__dict__
        if "task" in fields and "id" in fields:
            return True
        running = current_task()
        if running is not None:
            fields.setdefault("task", running.task.name)
            fields.setdefault("id", running.taskid)
            fields.setdefault("queue", running.queue)
            return True
        names = _WORKER_MESSAGES.get(record.msg) if isinstance(record.msg, str) else None
        args = record.args
        if names and isinstance(args, tuple) and len(args) == len(names):
            for name, value in zip(names, args):
                fields.setdefault(name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one ASCII line."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
        out: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "thread": record.threadName,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                out[name] = value if isinstance(value, (str, int, float, bool)) else str(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=True, default=str)


def json_handler(stream: Any = None) -> logging.Handler:
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(TaskFields())
    return handler


def use_json_logging(level: int = logging.INFO, stream: Any = None) -> None:
    """Send every log record, warning and uncaught exception to ``stream`` as JSON lines."""
    logging.basicConfig(level=level, handlers=[json_handler(stream)], force=True)
    logging.captureWarnings(True)
    crash = logging.getLogger("rpqueue.crash")

    def excepthook(kind: type[BaseException], value: BaseException,
                   tb: types.TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
            return
        crash.critical("uncaught exception", exc_info=(kind, value, tb))

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        crash.critical("uncaught exception in thread %s",
                       args.thread.name if args.thread is not None else "?",
                       exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook
