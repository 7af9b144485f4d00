"""A FastAPI app that queues rpqueue tasks from its endpoints with the async
client, and reads their state and results back.

Run it (FastAPI and uvicorn installed), with a worker for its tasks, both
from the examples folder::

    export RPQUEUE_URL=redis://localhost:6379/0
    uvicorn fastapi_app:api
    rpqueue worker --module fastapi_app reports

The pattern, in the ``lifespan`` below: the app's Redis settings come from
``$RPQUEUE_URL`` (or ``rpqueue.set_redis_url`` before serving). At startup,
a ping fails the start if Redis cannot be reached. Endpoints ``await
task.aexecute(...)`` (or ``task.options(...).aexecute(...)``), which runs on a
``redis.asyncio`` client of the server's event loop, so no request blocks
the loop. At shutdown, that client's connections are closed. Starlette alone
works the same way: ``Starlette(routes=..., lifespan=lifespan)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

import rpqueue
from rpqueue import EnqueuedTask


@rpqueue.task(name="reports.build", queue="reports", save_results=3600, attempts=3,
              retry_on=(ConnectionError,))
def build_report(user_id: int, kind: str = "summary", _attempts: int = 3) -> dict[str, Any]:
    """The slow work a request must not wait for."""
    return {"user_id": user_id, "kind": kind, "lines": user_id % 7 + 1}


@asynccontextmanager
async def lifespan(api: FastAPI) -> AsyncIterator[None]:
    queue = rpqueue.default_app()
    # This loop's client: made now, so a Redis that cannot be reached stops the start.
    await queue.aclient().ping()
    yield
    await queue.aclient().aclose()


api = FastAPI(title="reports", lifespan=lifespan)


class ReportRequest(BaseModel):
    user_id: int = Field(ge=1)
    kind: str = "summary"
    urgent: bool = False


@api.post("/reports", status_code=202)
async def request_report(body: ReportRequest) -> dict[str, str]:
    # Call options apart from the arguments: mypy checks (user_id, kind)
    # against build_report's signature.
    call = build_report.options(priority=-1 if body.urgent else 0)
    handle = await call.aexecute(body.user_id, body.kind)
    return {"taskid": handle.taskid, "state": await handle.astate()}


@api.get("/reports/{taskid}")
async def report(taskid: str) -> dict[str, Any]:
    handle: EnqueuedTask[dict[str, Any]] = EnqueuedTask(
        rpqueue.default_app(), build_report.name, build_report.queue, taskid, ())
    state = await handle.astate()
    if state == "unknown":
        raise HTTPException(404, f"no report task {taskid}")
    return {"taskid": taskid, "state": state,
            "result": await handle.aresult() if state == "succeeded" else None}


@api.get("/health")
async def health() -> dict[str, bool]:
    return {"redis": bool(await rpqueue.default_app().aclient().ping())}
