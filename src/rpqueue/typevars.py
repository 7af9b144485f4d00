"""The type variables of typed tasks: ``P`` (a task function's parameters) and
``R`` (its return type), as in ``Task[P, R]`` and ``EnqueuedTask[R]``.

For a type checker they have defaults, so a bare ``Task`` means
``Task[..., Any]`` and a bare ``EnqueuedTask`` ``EnqueuedTask[Any]``: code
that names the classes without parameters stays valid under ``--strict``.
At run time the defaults are not needed (and ``typing`` before 3.13 has
none), so no ``typing_extensions`` is imported then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing_extensions import ParamSpec, TypeVar

    P = ParamSpec("P", default=...)
    R = TypeVar("R", default=Any)
else:
    from typing import ParamSpec, TypeVar

    P = ParamSpec("P")
    R = TypeVar("R")

__all__ = ["P", "R"]
