"""Bugs the old layout's drift produced (issue "One door to Redis"), each
checked against a real redis-server: the module-level API had re-spelled
signatures that dropped settings, and the async path of queue registration
differed from the sync one."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

import rpqueue


def test_module_level_functions_are_the_default_apps_methods() -> None:
    # Re-spelled wrappers dropped arguments; bound methods cannot drift.
    for name in ("set_redis_connection_settings", "set_redis_url", "task", "read_deadletter",
                 "call_task", "set_queue_limit", "execute_tasks"):
        func = getattr(rpqueue, name)
        assert getattr(func, "__self__", None) is rpqueue.default_app(), name


def test_connection_settings_take_the_acl_user_and_client_certificate(
        app: rpqueue.RPQueue, redis_url: str) -> None:
    params = inspect.signature(rpqueue.set_redis_connection_settings).parameters
    assert {"username", "ssl_certfile", "ssl_keyfile"} <= set(params)
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    rpqueue.set_redis_connection_settings("127.0.0.1", port, username="default",
                                          password=None, socket_timeout=7)
    kwargs = app.client.connection_pool.connection_kwargs
    assert kwargs["username"] == "default" and kwargs["socket_timeout"] == 7
    assert app.client.ping()


def test_set_redis_url_takes_a_socket_timeout(app: rpqueue.RPQueue, redis_url: str) -> None:
    rpqueue.set_redis_url(redis_url, socket_timeout=4)
    assert app.client.connection_pool.connection_kwargs["socket_timeout"] == 4
    assert app.client.ping()


def test_anote_queue_bumps_the_version_like_note_queue(app: rpqueue.RPQueue, rcli: Any) -> None:
    @app.task(queue="fresh-async")
    def job() -> None:
        """A task only queued here."""

    before = int(rcli.get(app.keys.queues_version) or 0)
    asyncio.run(job.aexecute())
    # Busy workers serving all queues watch this version to see the new queue.
    assert int(rcli.get(app.keys.queues_version) or 0) == before + 1
    assert "fresh-async" in app.known_queues()


def test_anote_queue_translates_a_refused_write(app: rpqueue.RPQueue, rcli: Any) -> None:
    @app.task(queue="refused-async")
    def job() -> None:
        """A task only queued here."""

    rcli.config_set("maxmemory", 1)
    try:
        with pytest.raises(rpqueue.RedisOutOfMemory):
            asyncio.run(job.aexecute())
    finally:
        rcli.config_set("maxmemory", 0)
