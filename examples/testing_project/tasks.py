"""The tasks of a small application, as a user would write them."""

from __future__ import annotations

import rpqueue

# Where the tasks leave their mark, so tests can see what ran.
SENT: list[str] = []


@rpqueue.task(save_results=60)
def add(a: int, b: int) -> int:
    return a + b


@rpqueue.task(save_results=60)
def signup(email: str) -> str:
    """Register a user and queue the welcome mail."""
    welcome.execute(email)
    return email.lower()


@rpqueue.task
def welcome(email: str) -> None:
    SENT.append(email)


@rpqueue.task(attempts=3, retry_on=(ConnectionError,), backoff=0.05, save_results=60)
def flaky_fetch(url: str, fail_times: int, _attempts: int = 3) -> str:
    """Fails (retried) until only ``3 - fail_times`` attempts are left."""
    if 3 - _attempts < fail_times:
        raise ConnectionError(f"{url} unreachable")
    return f"fetched {url}"
