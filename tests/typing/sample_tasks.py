"""Calls mypy must accept or reject, checked by tests/unit/test_typed_tasks.py.

A line whose comment starts with ``E:`` must draw a mypy error whose message
holds the rest of the comment; every other line must draw none. Never
imported, only type-checked.
"""

from __future__ import annotations

import datetime

import rpqueue
from rpqueue import EnqueuedTask, Task, new_rpqueue

app = new_rpqueue("typing-sample")


@app.task
def quote(amount: int, rate: float) -> float:
    return amount * rate


@app.task(queue="low", attempts=3)
def greet(name: str, *, polite: bool = False) -> str:
    return name


@rpqueue.task
def ping() -> None:
    return None


@app.task(save_results=60)
async def fetch(url: str) -> bytes:
    return url.encode()


# What the decorators give.
q: Task[[int, float], float] = quote
g: Task[[str], int] = greet  # E: Incompatible types in assignment

# The typed path: options first, then exactly the function's arguments.
h1: EnqueuedTask[float] = quote.options(delay=5, priority=1).execute(3, 0.2)
h2 = greet.options(queue="other", taskid="t-1").execute("ann", polite=True)
h3 = quote.options(delay=datetime.timedelta(seconds=2)).options(priority=2).execute(1, 2.0)
h4 = ping.options().execute()
quote.options().execute("not an int", 0.2)  # E: Argument 1 to "execute" of "TaskCall" has incompat
quote.options().execute(3)  # E: Missing positional argument "rate"
quote.options().execute(3, 0.2, 7)  # E: Too many arguments
greet.options().execute("ann", rude=True)  # E: Unexpected keyword argument "rude"
quote.options(dealy=5).execute(3, 0.2)  # E: Unexpected keyword argument "dealy"
quote.options(priority="high").execute(3, 0.2)  # E: Argument "priority" to "options" of "Task"

# The original form keeps working; its handle is typed by the return type.
h5: EnqueuedTask[float] = quote.execute(3, 0.2, delay=5, priority=1)
h6 = greet.execute("ann", polite=True, taskid="t-2")

# Results are Optional: a task may not have finished or saved one.
r1: float | None = h1.result
r2: float = h1.result  # E: Incompatible types in assignment
r3: str | None = h2.result
r4: int = h2.result  # E: Incompatible types in assignment

# Calling the task runs the function, typed.
v1: float = quote(3, 0.2)
v2: str = quote(3, 0.2)  # E: Incompatible types in assignment

# An async def task: handles hold what its coroutine returns.
a1: EnqueuedTask[bytes] = fetch.options(priority=-1).execute("https://example.com")
a2: bytes | None = fetch.execute("https://example.com").result
fetch.options().execute(b"not a str")  # E: Argument 1 to "execute" of "TaskCall" has incompat
a3: str | None = fetch.execute("u").result  # E: Incompatible types in assignment


async def in_async_code() -> None:
    r5: float | None = await (await quote.options(delay=1).aexecute(3, 0.2)).aget(5)
    r6: bytes = await fetch("u")
    await quote.options().aexecute(3)  # E: Missing positional argument "rate"
    print(r5, r6)
