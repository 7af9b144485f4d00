"""General-purpose tasks for the integration tests (imported by workers and tests)."""

from __future__ import annotations

from typing import Any

from ledger import hold, note

from rpqueue import task


@task
def record(tag: str, *args: Any, **kwargs: Any) -> None:
    """Bare @task: note that it ran, with what."""
    note("ran", tag=tag, args=list(args), kwargs=kwargs)


@task(queue="low")
def record_low(tag: str) -> None:
    note("ran", tag=tag)


@task(queue=b"bytesq")
def record_bytes_queue(tag: str) -> None:
    note("ran", tag=tag)


@task(save_results=30)
def add(a: int, b: int) -> int:
    note("ran", tag="add", args=[a, b])
    return a + b


@task(save_results=30)
def echo(value: Any) -> Any:
    return value


@task(save_results=0.5)
def short_lived_result() -> str:
    return "soon gone"


@task(save_results=30)
def unjsonable_result() -> Any:
    return {1, 2, 3}


@task
def gate(tag: str, seconds: float = 10.0) -> None:
    """Run until the test releases ``tag`` (or ``seconds`` pass)."""
    note("started", tag=tag)
    released = hold(tag, seconds)
    note("finished", tag=tag, released=released)


@task(save_results=30)
def gate_result(tag: str, seconds: float = 10.0) -> str:
    note("started", tag=tag)
    hold(tag, seconds)
    return "gated"


@task
def boom(message: str) -> None:
    note("ran", tag="boom")
    raise ValueError(message)


@task(attempts=3, retry_delay=0.2)
def fail_until_zero_fast(value: int, **kwargs: Any) -> None:
    """The README's fail_until_zero with a short retry_delay, recording each run."""
    note("ran", tag="fuz", value=value, attempts=kwargs.get("_attempts"))
    try:
        if value != 0:
            value -= 1
            raise Exception
    except Exception:
        fail_until_zero_fast.retry(value, **kwargs)
    else:
        note("succeeded", tag="fuz")


@task(attempts=4, retry_delay=30)
def retry_with_delay(delay: float | None, **kwargs: Any) -> None:
    """Retries itself once: with the task's retry_delay, or with an explicit delay=."""
    note("ran", tag="rwd", attempts=kwargs.get("_attempts"))
    if kwargs.get("_attempts") == 4:
        if delay is None:
            retry_with_delay.retry(delay, **kwargs)
        else:
            retry_with_delay.retry(delay, delay=delay, **kwargs)


@task(queue="high")
def in_high(tag: str) -> None:
    note("ran", tag=tag)


@task(name="custom.name.for.task")
def named_task(tag: str) -> None:
    note("ran", tag=tag)


@task(save_results=60)
def sleeper(tag: str, seconds: float) -> str:
    """Busy for ``seconds`` without touching Redis (survives a Redis outage)."""
    import time

    note("started", tag=tag)
    time.sleep(seconds)
    return f"slept {seconds}"
