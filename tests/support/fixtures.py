"""Redis server fixtures shared by every suite (a pytest plugin that
tests/conftest.py registers).

Every Redis here is a real redis-server process (see redis_server.py). A
machine without redis-server fails the run at startup instead of skipping:
a green run that tested nothing would be worse than a red one.
"""

from collections.abc import Callable, Iterator, Mapping

import pytest
import redis
from redis_server import (
    MISSING_BINARY_MESSAGE,
    OptionValue,
    RedisServerProcess,
    redis_server_binary,
    redis_server_version,
)

# Settings for servers that tests kill and restart: with fsync on every write
# a SIGKILL loses nothing the server acknowledged, so such tests are
# deterministic rather than dependent on the once-a-second fsync timing.
FRESH_REDIS_OPTIONS: dict[str, OptionValue] = {
    "appendonly": "yes",
    "appendfsync": "always",
}

RedisFactory = Callable[..., RedisServerProcess]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "redis_options(**options): extra redis-server settings for the fresh_redis "
        "fixture, e.g. @pytest.mark.redis_options(maxmemory='2mb')",
    )
    if redis_server_binary() is None:
        pytest.exit(MISSING_BINARY_MESSAGE, returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_report_header(config: pytest.Config) -> str:
    binary = redis_server_binary()
    if binary is None:
        return "redis-server: MISSING"
    version = ".".join(str(part) for part in redis_server_version(binary))
    return f"redis-server: {binary} (version {version})"


@pytest.fixture(scope="session")
def redis_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServerProcess]:
    """One redis-server shared by the whole session (no persistence)."""
    server = RedisServerProcess(tmp_path_factory.mktemp("redis-session"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_proc: RedisServerProcess) -> str:
    """URL of the session server, emptied for this test.

    Tests run serially, so wiping the shared server between tests gives each
    one the state of a new server without the cost of starting one.
    """
    # A test that broke the shared server must not take every later test
    # down with it.
    if redis_proc.paused:
        redis_proc.resume()
    if not redis_proc.is_running():
        redis_proc.restart()
    client = redis_proc.client()
    try:
        client.flushall()
        # Cached scripts and loaded functions would hide a missing
        # load-on-NOSCRIPT path in the code under test.
        client.script_flush()
        try:
            client.function_flush()
        except redis.ResponseError:
            pass  # server without FUNCTION support
    finally:
        client.close()
    return redis_proc.url


@pytest.fixture
def redis_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisFactory]:
    """Start extra dedicated servers: ``redis_factory(options=None, start=True)``.

    Every server made here is stopped when the test ends.
    """
    made: list[RedisServerProcess] = []

    def make(options: Mapping[str, OptionValue] | None = None, start: bool = True) -> RedisServerProcess:
        server = RedisServerProcess(tmp_path_factory.mktemp("redis"), options)
        made.append(server)
        if start:
            server.start()
        return server

    try:
        yield make
    finally:
        for server in made:
            server.stop()


@pytest.fixture
def fresh_redis(request: pytest.FixtureRequest, redis_factory: RedisFactory) -> RedisServerProcess:
    """A dedicated, started server that the test may kill, pause or restart.

    AOF with ``appendfsync always`` by default; add or override settings with
    ``@pytest.mark.redis_options(name=value, ...)`` (underscores in names
    become dashes).
    """
    options: dict[str, OptionValue] = dict(FRESH_REDIS_OPTIONS)
    marker = request.node.get_closest_marker("redis_options")
    if marker is not None:
        for name, value in marker.kwargs.items():
            options[name.replace("_", "-")] = value
    return redis_factory(options)
