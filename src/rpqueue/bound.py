"""``TaskCall``: a task with its call options fixed, ``task.options(delay=5)``,
whose ``execute`` takes exactly the task function's parameters (and so is
checked by mypy: argument types, missing and extra arguments)."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Generic, Protocol

from .handle import EnqueuedTask
from .options import CallOptions, UniqueKey
from .typevars import P, R


class Enqueues(Protocol):
    """What a TaskCall needs of its task (``Task`` has it)."""

    name: str

    def _enqueue(self, args: tuple[Any, ...], kwargs: dict[str, Any], call: CallOptions,
                 inline: bool = False) -> EnqueuedTask[Any]: ...

    async def _aenqueue(self, args: tuple[Any, ...], kwargs: dict[str, Any],
                        call: CallOptions) -> EnqueuedTask[Any]: ...


class TaskCall(Generic[P, R]):
    """A task and the options of its next calls (``call.call_options``).

    Made by ``task.options(delay=..., priority=...)``; ``execute`` and
    ``aexecute`` take the function's own arguments only, so every keyword
    goes to the function and mypy checks the call against its signature.
    ``call.options(...)`` changes some options and returns a new TaskCall.
    """

    def __init__(self, task: Enqueues, call_options: CallOptions) -> None:
        self.task = task
        self.call_options = call_options

    def __repr__(self) -> str:
        return f"<TaskCall {self.task.name} {self.call_options}>"

    # Deliberate copy: the keyword list of TaskRef.options (task.py), spelled
    # out here too so that mypy checks option names on chained calls.
    def options(
        self,
        *,
        delay: float | datetime.timedelta | None = None,
        taskid: str | None = None,
        queue: str | bytes | None = None,
        priority: int | None = None,
        unique_for: float | None = None,
        unique_key: UniqueKey = None,
    ) -> TaskCall[P, R]:
        """These options changed (those given, not None), the others kept."""
        given: dict[str, Any] = {
            k: v for k, v in dict(delay=delay, taskid=taskid, queue=queue, priority=priority,
                                  unique_for=unique_for, unique_key=unique_key).items()
            if v is not None}
        return TaskCall(self.task, dataclasses.replace(self.call_options, **given))

    def execute(self, *args: P.args, **kwargs: P.kwargs) -> EnqueuedTask[R]:
        """Queue ``task(*args, **kwargs)`` with these options; see ``Task.execute``
        for the handle returned and what is raised."""
        return self.task._enqueue(args, kwargs, self.call_options)

    async def aexecute(self, *args: P.args, **kwargs: P.kwargs) -> EnqueuedTask[R]:
        """``execute`` for asyncio code, on a redis.asyncio connection."""
        return await self.task._aenqueue(args, kwargs, self.call_options)
