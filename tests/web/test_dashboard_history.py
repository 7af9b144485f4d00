"""Throughput history (issue #23): workers record per-minute counters in
Redis from their heartbeat; GET /api/history turns them into per-minute
throughput, depth and smoothed rates."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from dashboard_support import TestClient, Worker, enqueue, wait_until

from rpqueue.app import RPQueue
from rpqueue.storage import history_io


def _write(rpq: RPQueue, queue: str, minute: int, second: int, **values: int) -> None:
    """A history minute as storage/history_io.py documents it."""
    key = history_io.minute_key(rpq.store, queue, minute)
    rpq.client.set(key, history_io.encode({**values, "t": (minute * 60 + second) * 1000}))


def test_a_real_worker_records_counters_and_depth_each_minute(
        rpq: RPQueue, client: TestClient, start_worker: Callable[..., Worker]) -> None:
    for i in range(3):
        enqueue(rpq, "webtasks.sometimes", "web", f"h{i}")
    enqueue(rpq, "webtasks.sometimes", "web", "later", delay=3600)
    start_worker("web")
    wait_until(lambda: rpq.client.llen("webtest:done") == 3, what="three tasks to run")
    # The worker samples at once when it starts, then every SAMPLE_EVERY s.
    _, minute = history_io.redis_minute(rpq.store)

    def recorded() -> dict[str, int] | None:
        found = history_io.read(rpq.store, "web", minute - 1, minute + 1)
        return next((h for h in reversed(found) if h and h.get("done") == 3), None)
    sample = wait_until(recorded, timeout=history_io.SAMPLE_EVERY + 15, what="a history sample")
    assert sample is not None
    assert sample["depth"] == 1 and sample["enqueued"] == 4 and sample["failed"] == 0
    ttl = rpq.client.ttl(history_io.minute_key(rpq.store, "web", sample["t"] // 60_000))
    assert 0 < ttl <= history_io.RETENTION
    body = client.get("/api/history", params={"queue": "web", "minutes": 5}).json()
    assert len(body["points"]) == 5 and body["queue"] == "web"
    assert any(p["depth"] == 1 for p in body["points"])


def test_history_turns_totals_into_per_minute_counts_and_rates(rpq: RPQueue,
                                                               client: TestClient) -> None:
    # Written and read within one minute: not in the last seconds of one.
    wait_until(lambda: rpq.store.redis_time() % 60 < 50, timeout=15, what="a fresh minute")
    _, now = history_io.redis_minute(rpq.store)
    _write(rpq, "q", now - 4, 50, done=100, failed=10, retried=3, dead=1, enqueued=120, depth=7)
    _write(rpq, "q", now - 3, 50, done=160, failed=10, retried=3, dead=1, enqueued=170, depth=4)
    # now - 2: no worker sampled the queue.
    _write(rpq, "q", now - 1, 50, done=220, failed=16, retried=5, dead=2, enqueued=240, depth=9)
    # A reset (queue deleted and made again) reads as no work, not negative.
    _write(rpq, "q", now, 20, done=0, failed=0, retried=0, dead=0, enqueued=0, depth=0)
    body = client.get("/api/history", params={"queue": "q", "minutes": 4}).json()
    points = body["points"]
    assert [p["t"] for p in points] == [(now - 3 + i) * 60 for i in range(4)]
    assert (points[0]["processed"], points[0]["failed"], points[0]["depth"]) == (60, 0, 4)
    assert points[1] == {"t": (now - 2) * 60, "depth": None, "processed": None, "failed": None,
                         "retried": None, "dead": None, "enqueued": None}
    # The minute after a gap has a depth but no counts (nothing to subtract from).
    assert points[2]["depth"] == 9 and points[2]["processed"] is None
    assert (points[3]["processed"], points[3]["enqueued"]) == (0, 0)
    # Smoothed over the minutes with counts: 60 tasks in 60 s, then 0 in 30 s.
    assert body["rate"] == pytest.approx(60 / 90, abs=0.001)
    assert body["failure_rate"] == 0.0


def test_history_of_a_queue_with_none_is_empty(client: TestClient) -> None:
    body = client.get("/api/history", params={"queue": "quiet"}).json()
    assert body["minutes"] == 60 and len(body["points"]) == 60
    assert all(p["processed"] is None and p["depth"] is None for p in body["points"])
    assert (body["rate"], body["failure_rate"]) == (None, None)


@pytest.mark.parametrize("query", [{}, {"queue": "q", "minutes": "0"},
                                   {"queue": "q", "minutes": "1441"}, {"queue": "q", "minutes": "x"}])
def test_history_refuses_bad_parameters(client: TestClient, query: dict[str, str]) -> None:
    r = client.get("/api/history", params=query)
    assert r.status_code == 400 and r.json()["error"]


def test_sampling_skips_a_queue_whose_keys_are_odd(rpq: RPQueue) -> None:
    enqueue(rpq, "t.x", "good", 1)
    rpq.client.set(rpq.keys.queue("odd").stats, "not a hash")
    assert history_io.sample(rpq.store, ["good", "odd"]) == 1
    _, minute = history_io.redis_minute(rpq.store)
    found = history_io.read(rpq.store, "good", minute - 1, minute)
    assert any(h and h["depth"] == 1 and h["enqueued"] == 1 for h in found)


def test_rate_sampler_smooths_bursts_over_a_window() -> None:
    from rpqueue.web.model import RateSampler

    clock = [0.0]
    sampler = RateSampler(keep=60, min_interval=0.5, clock=lambda: clock[0])
    # Work arrives in bursts of 20 every other poll: 5 tasks/s on average.
    total = 0
    for step in range(12):
        clock[0] = step * 2.0
        total += 20 if step % 2 else 0
        sampler.observe({"q": (total, 0)})
    assert sampler.rates("q")[0][-2:] in ([10.0, 0.0], [0.0, 10.0])
    assert sampler.smoothed("q", window=8.0) == pytest.approx(5.0, abs=1.3)
    assert sampler.smoothed("none") is None
