"""Testing code that uses rpqueue: an eager mode and a real in-process worker.

- ``eager(app)`` (a context manager) or ``set_eager(app, True)``: calls run
  in the caller at ``execute``, as a worker would run them (see
  ``rpqueue.eager``); no Redis is needed. The handle says how it went:
  ``status`` is 'done', ``result`` the saved result, ``inline_error`` what
  the last attempt raised.
- ``InProcessWorker(app)``: worker threads in this process against a real
  Redis, with ``drain(timeout)`` to wait until the queues are empty and
  nothing runs.
- ``rpqueue.testing.pytest_plugin``: pytest fixtures that start a
  temporary redis-server (the embedded server), bind an app to it and run
  an InProcessWorker. See docs/TESTING.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .. import eager as _eager
from ..app import RPQueue
from .harness import InProcessWorker, bind

__all__ = ["InProcessWorker", "bind", "eager", "is_eager", "set_eager"]


def set_eager(app: RPQueue, on: bool = True) -> None:
    """Turn eager mode on (or off) for ``app``: its tasks run at ``execute``.

    Tasks run in the calling thread, one attempt after another: retries
    (``retry_on``, ``task.retry()``, visibility-timeout tasks) happen at
    once, delays and backoff are not waited for, unique keys and queue
    bounds are not applied. A failure is not raised: the handle's
    ``inline_error`` holds it. Results are kept as a worker saves them: only
    for a task with ``save_results`` > 0, after a JSON round trip. Hooks are
    not called. A ``TaskRef`` runs the task of its name defined in ``app``.
    """
    if on:
        _eager.enable(app.ctx.store, app.registry)
    else:
        _eager.disable(app.ctx.store)


def is_eager(app: RPQueue) -> bool:
    """Whether ``app`` runs its tasks eagerly."""
    return _eager.is_eager(app.ctx.store)


@contextlib.contextmanager
def eager(app: RPQueue) -> Iterator[RPQueue]:
    """``with eager(app):`` runs ``app``'s tasks at ``execute`` (see ``set_eager``),
    and restores what was before on leaving."""
    before = is_eager(app)
    set_eager(app, True)
    try:
        yield app
    finally:
        set_eager(app, before)
