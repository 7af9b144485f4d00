"""Tasks declared with attempts=3 whose functions cannot take ``_attempts``
(test_cli_usage.py): the worker must not pass it to them."""

from __future__ import annotations

from typing import Any

from ledger import note

from rpqueue import task


@task(queue="attempts", attempts=3, retry_delay=0)
def plain(tag: str) -> str:
    note("ran", tag=tag)
    return tag


@task(queue="attempts", attempts=3, retry_delay=0)
async def fetch(url: str) -> str:
    note("ran", tag=url)
    return url


@task(queue="attempts", attempts=3, retry_delay=0)
def counted(tag: str, _attempts: int = 0) -> None:
    note("ran", tag=tag, attempts=_attempts)


@task(queue="attempts", attempts=3, retry_delay=0)
def flexible(tag: str, **kwargs: Any) -> None:
    note("ran", tag=tag, attempts=kwargs.get("_attempts"))
