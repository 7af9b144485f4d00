"""Task state, errors and events on a Redis Cluster (issue #17): every key
a script writes shares its queue's slot, and app.events reads queues that
live on different primaries."""

from __future__ import annotations

from typing import Any

import cluster_tasks
import pytest
from cluster_harness import Ledger, Workers
from redis_cluster import RedisCluster6

import rpqueue


def test_states_and_events_across_shards(cluster: RedisCluster6, cluster_url: str,
                                         workers: Workers, ledger: Ledger,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    app = rpqueue.default_app()
    names = cluster.queue_names_on_distinct_primaries(2, prefix="st")
    monkeypatch.setenv("RPQUEUE_EVENTS", "1")  # read by the workers started below
    app.set_events(True)
    try:
        workers.start(*names)
        ok = cluster_tasks.add.execute(2, 3, _queue=names[0])
        bad = cluster_tasks.fail_then_pass.execute("never", _queue=names[1])
        assert ok.get(timeout=15) == 5 and ok.state == "succeeded"
        with pytest.raises(rpqueue.TaskFailed) as info:
            bad.get(timeout=30)
        assert info.value.state == "dead" and bad.attempt == (2, 2)
        assert info.value.error is not None and info.value.error.type == "ValueError"
        seen: dict[str, list[Any]] = {}
        for e in app.events(names, since=0, timeout=1.0):
            seen.setdefault(e.id, []).append((e.queue, e.event))
        assert seen[ok.taskid] == [(names[0], "enqueued"), (names[0], "started"),
                                   (names[0], "succeeded")]
        assert [x[1] for x in seen[bad.taskid]] == ["enqueued", "started", "retrying",
                                                    "started", "dead"]
    finally:
        app.set_events(False)
