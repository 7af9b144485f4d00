"""Periodic tasks using attempts / retry_delay and save_results."""

from typing import Any

from periodic_ledger import record

from rpqueue import periodic_task


@periodic_task(2, attempts=3, retry_delay=0.4, name="options.retrying")
def retrying(**kwargs: Any) -> None:
    # Fails every time: retry until the attempts run out (3, 2, 1).
    record("options.retrying", attempts=kwargs.get("_attempts"))
    retrying.retry(**kwargs)


@periodic_task(1, save_results=60, name="options.with_result")
def with_result() -> dict[str, Any]:
    taskid = record("options.with_result")
    return {"answer": 42, "taskid": taskid}
