"""The dashboard's JSON API against a real Redis (issue #8)."""

from __future__ import annotations

import json
import time

import pytest
from dashboard_support import TestClient, add_dead, csrf_headers, enqueue, make_client

from rpqueue.app import RPQueue
from rpqueue.storage.wire import unstamp
from rpqueue.web.app import safe_url
from rpqueue.web.model import RateSampler

# -- the page ------------------------------------------------------------------------


def test_page_and_its_assets_are_served_with_strict_headers(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/app.js"' in page.text
    csp = page.headers["content-security-policy"]
    # No inline script may run, whatever ends up in the page.
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    for asset, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        r = client.get(f"/static/{asset}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
    api = client.get("/api/queues")
    assert api.headers["cache-control"] == "no-store"
    assert api.headers["content-type"] == "application/json"


def test_page_script_never_parses_data_as_html() -> None:
    from rpqueue.web.app import STATIC

    script = (STATIC / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink


def test_session_reports_settings_and_masks_the_redis_password(rpq: RPQueue) -> None:
    port = rpq.client.connection_pool.connection_kwargs["port"]
    rpq.set_redis_url(f"redis://user:s3cret@127.0.0.1:{port}/0")
    with make_client(rpq, poll_interval=1.5) as c:
        body = c.get("/api/session").json()
    assert body["redis"] == f"redis://user:***@127.0.0.1:{port}/0"
    assert "s3cret" not in json.dumps(body)
    assert body["prefix"] == "rpqueue:"
    assert body["poll_interval"] == 1.5
    assert body["auth_required"] is False
    assert len(body["csrf_token"]) == 64


def test_safe_url() -> None:
    assert safe_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert safe_url("rediss://:pw@h:1/2") == "rediss://:***@h:1/2"
    assert safe_url("redis://u:pw@[::1]:7/0") == "redis://u:***@[::1]:7/0"
    assert safe_url("unix:///tmp/redis.sock?db=0") == "unix:///tmp/redis.sock?db=0"


# -- queues ---------------------------------------------------------------------------


def test_queues_show_depth_delayed_in_flight_dead_seen_and_priority(
        rpq: RPQueue, client: TestClient) -> None:
    for i in range(3):
        enqueue(rpq, "mail.send", "alpha", i)
    enqueue(rpq, "mail.send", "alpha", 99, delay=600)
    enqueue(rpq, "report.build", "beta", "q2")
    rpq.set_priority("beta", 0)
    # A priority set by hand for a queue nothing has used yet.
    rpq.client.hset(rpq.keys.priorities, "gamma", 5)
    # A taken task is one with a lease (docs/PROTOCOL.md).
    rpq.client.zadd(rpq.keys.queue("alpha").leases, {"running-1": 1e15})
    add_dead(rpq, "alpha", "mail.send", ["x"])

    body = client.get("/api/queues").json()
    assert body["now"] == pytest.approx(time.time(), abs=5)
    # Served order: queues with a priority first, lowest first, then by name.
    assert [q["name"] for q in body["queues"]] == ["beta", "gamma", "alpha"]
    alpha = body["queues"][2]
    assert (alpha["waiting"], alpha["delayed"], alpha["running"], alpha["dead"]) == (3, 1, 1, 1)
    assert alpha["priority"] is None
    assert alpha["seen"] == pytest.approx(time.time(), abs=60)
    assert alpha["stats"]["enqueued"] == 4
    beta, gamma = body["queues"][0], body["queues"][1]
    assert (beta["priority"], beta["waiting"]) == (0.0, 1)
    assert (gamma["priority"], gamma["waiting"], gamma["seen"]) == (5.0, 0, None)


def test_queues_show_the_scheduling_mode_and_each_weight(rpq: RPQueue,
                                                         client: TestClient) -> None:
    enqueue(rpq, "mail.send", "alpha", 1)
    enqueue(rpq, "report.build", "beta", 2)
    body = client.get("/api/queues").json()
    assert body["scheduling"] == {"mode": "strict", "age": None}
    assert [q["weight"] for q in body["queues"]] == [1.0, 1.0]
    rpq.set_scheduling("weighted")
    rpq.set_queue_weight("beta", 2.5)
    body = client.get("/api/queues").json()
    assert body["scheduling"] == {"mode": "weighted", "age": None}
    assert {q["name"]: q["weight"] for q in body["queues"]} == {"alpha": 1.0, "beta": 2.5}
    rpq.set_scheduling("aging", age=30)
    assert client.get("/api/queues").json()["scheduling"] == {"mode": "aging", "age": 30.0}


def test_queues_and_items_show_limits_and_message_priorities(rpq: RPQueue,
                                                            client: TestClient) -> None:
    enqueue(rpq, "mail.send", "alpha", "plain", unique_for=60, unique_key="welcome:42")
    enqueue(rpq, "mail.send", "alpha", "urgent", priority=-3)
    rpq.set_queue_limit("alpha", 50, overflow="drop_oldest")
    body = client.get("/api/queues").json()
    alpha = body["queues"][0]
    assert alpha["limit"] == {"max_len": 50, "overflow": "drop_oldest"}
    assert alpha["waiting"] == 2  # the prioritised task counts as waiting
    assert "seq" not in alpha["stats"]
    items = client.get("/api/items", params={"queue": "alpha"}).json()
    # Run order, each with its priority (0 is left out).
    assert [(i["args"], i.get("priority"), i.get("unique_key")) for i in items["items"]] == [
        (["urgent"], -3, None), (["plain"], None, "mail.send:welcome:42")]
    assert items["waiting"] == 2
    rpq.set_queue_limit("alpha", None)
    assert client.get("/api/queues").json()["queues"][0]["limit"] is None


def test_rate_sampler_turns_counter_readings_into_rates() -> None:
    clock = [0.0]
    sampler = RateSampler(keep=3, min_interval=1.0, clock=lambda: clock[0])
    readings = [(0.0, 0, 0), (2.0, 10, 4), (2.5, 99, 99), (4.0, 10, 6), (6.0, 30, 6), (8.0, 0, 0)]
    for t, processed, enqueued in readings:
        clock[0] = t
        sampler.observe({"q": (processed, enqueued), "other": (0, 0)})
    # The reading at 2.5 came too soon and was dropped; only the last 3 rates
    # are kept; the reset to 0 (queue deleted and recreated) reads as 0, not negative.
    assert sampler.rates("q") == ([0.0, 10.0, 0.0], [1.0, 0.0, 0.0])
    clock[0] = 10.0
    sampler.observe({"other": (0, 0)})
    assert sampler.rates("q") == ([], [])  # gone queues lose their history


def test_queues_carry_a_rate_history_sampled_on_each_poll(rpq: RPQueue) -> None:
    stats = rpq.keys.queue("busy").stats
    enqueue(rpq, "job.run", "busy", 1)
    with make_client(rpq, poll_interval=0.1) as c:
        assert c.get("/api/queues").json()["queues"][0]["rate"] == []
        for done in (40, 80):
            time.sleep(0.1)
            rpq.client.hincrby(stats, "done", done // 2)
            rpq.client.hincrby(stats, "failed", done // 2)
            busy = c.get("/api/queues").json()["queues"][0]
    assert len(busy["rate"]) == 2 and len(busy["rate_enqueued"]) == 2
    assert all(r > 0 for r in busy["rate"])
    # 80 tasks in a bit over 0.1 s: hundreds per second, never more than 800.
    assert 50 < busy["rate"][1] <= 800


# -- a queue's items ---------------------------------------------------------------------


def test_items_page_through_waiting_then_delayed_tasks(rpq: RPQueue, client: TestClient) -> None:
    waiting = [enqueue(rpq, "mail.send", "pages", i, to=f"u{i}@example.com") for i in range(5)]
    delayed = [enqueue(rpq, "mail.send", "pages", 100 + i, delay=600 + i) for i in range(2)]

    def page(n: int) -> dict[str, object]:
        r = client.get("/api/items", params={"queue": "pages", "page": n, "per_page": 3})
        assert r.status_code == 200
        return r.json()  # type: ignore[no-any-return]

    first = page(0)
    assert (first["total"], first["waiting"], first["delayed"], first["per_page"]) == (7, 5, 2, 3)
    items = first["items"]
    assert isinstance(items, list)
    assert [i["id"] for i in items] == [t.taskid for t in waiting[:3]]
    assert items[0] == {"id": waiting[0].taskid, "status": "waiting", "name": "mail.send",
                        "args": [0], "kwargs": {"to": "u0@example.com"}}
    second = page(1)["items"]
    assert isinstance(second, list)
    assert [i["status"] for i in second] == ["waiting", "waiting", "delayed"]
    assert second[2]["id"] == delayed[0].taskid
    assert second[2]["due"] == pytest.approx(time.time() + 600, abs=30)
    third = page(2)["items"]
    assert isinstance(third, list) and [i["id"] for i in third] == [delayed[1].taskid]
    assert page(3)["items"] == []


@pytest.mark.parametrize("query", [
    {}, {"queue": ""}, {"queue": "q", "page": "-1"}, {"queue": "q", "per_page": "0"},
    {"queue": "q", "per_page": "501"}, {"queue": "q", "page": "abc"},
])
def test_items_refuse_bad_parameters(client: TestClient, query: dict[str, str]) -> None:
    r = client.get("/api/items", params=query)
    assert r.status_code == 400
    assert r.json()["error"]


def test_items_of_a_queue_name_needing_escapes(rpq: RPQueue, client: TestClient) -> None:
    name = "we/ird ?&#{queue}%"
    enqueue(rpq, "t.x", name, 1)
    body = client.get("/api/items", params={"queue": name}).json()
    assert body["queue"] == name and body["total"] == 1


# -- dead letters --------------------------------------------------------------------------


def test_dead_letters_list_oldest_first_without_the_raw_message(
        rpq: RPQueue, client: TestClient) -> None:
    add_dead(rpq, "a", "mail.send", ["late"], error="ValueError: late", when=1_700_000_100.0)
    add_dead(rpq, "b", "report.build", [{"n": 1}], error="KeyError: n", when=1_700_000_000.0)
    body = client.get("/api/dead").json()
    assert body["total"] == 2
    first = body["items"][0]
    assert first == {"id": first["id"], "queue": "b", "name": "report.build", "args": [{"n": 1}],
                     "kwargs": {}, "reason": "task raised an exception", "error": "KeyError: n",
                     "attempts_used": 1, "time": 1_700_000_000.0}
    assert [d["queue"] for d in body["items"]] == ["b", "a"]
    only_a = client.get("/api/dead", params={"queue": "a"}).json()
    assert only_a["total"] == 1 and only_a["items"][0]["error"] == "ValueError: late"
    limited = client.get("/api/dead", params={"limit": 1}).json()
    assert limited["total"] == 2 and len(limited["items"]) == 1


def test_requeue_one_dead_letter_puts_the_message_back_unchanged(
        rpq: RPQueue, client: TestClient) -> None:
    taskid = add_dead(rpq, "q", "mail.send", ["ünïcode", 1.5, {"deep": [None]}])
    other = add_dead(rpq, "q", "mail.send", ["stays"], when=1_700_000_001.0)
    k = rpq.keys.queue("q")
    original = json.loads(rpq.client.hget(k.deadmsg, taskid))["message"]
    r = client.post("/api/dead/requeue", json={"items": [{"queue": "q", "id": taskid}]},
                    headers=csrf_headers(client))
    assert r.status_code == 200 and r.json() == {"requeued": 1, "skipped": 0}
    assert rpq.client.lrange(k.ready, 0, -1) == [taskid.encode()]
    assert unstamp(rpq.client.hget(k.msg, taskid)).decode() == original
    assert [d["id"] for d in client.get("/api/dead").json()["items"]] == [other]
    again = client.post("/api/dead/requeue", json={"items": [{"queue": "q", "id": taskid}]},
                        headers=csrf_headers(client))
    assert again.json() == {"requeued": 0, "skipped": 0}


def test_requeue_uses_the_task_settings_from_the_registry(rpq: RPQueue, client: TestClient) -> None:
    rpq.client.hset(rpq.keys.tasks, "mail.send", json.dumps(
        {"queue": "q", "attempts": 3, "vis_timeout": 30, "use_dead": True}))
    taskid = add_dead(rpq, "q", "mail.send", [1])
    client.post("/api/dead/requeue", json={"items": [{"queue": "q", "id": taskid}]},
                headers=csrf_headers(client))
    assert rpq.client.hget(rpq.keys.queue("q").meta, taskid) == b"30000 3 3 1"


def test_requeue_all_and_delete_all(rpq: RPQueue, client: TestClient) -> None:
    for i in range(3):
        add_dead(rpq, "a", "t.x", [i], when=1_700_000_000.0 + i)
    add_dead(rpq, "b", "t.x", ["b"])
    # A record without a message cannot be requeued; it is reported, and kept.
    rpq.client.hset(rpq.keys.queue("b").deadmsg, "broken", json.dumps({"reason": "?"}))
    rpq.client.zadd(rpq.keys.queue("b").dead, {"broken": 1})
    headers = csrf_headers(client)
    r = client.post("/api/dead/requeue", json={"all": True, "queue": "a"}, headers=headers)
    assert r.json() == {"requeued": 3, "skipped": 0}
    assert rpq.client.llen(rpq.keys.queue("a").ready) == 3
    r = client.post("/api/dead/requeue", json={"all": True}, headers=headers)
    assert r.json() == {"requeued": 1, "skipped": 1}
    assert client.get("/api/dead").json()["total"] == 1
    for i in range(2):
        add_dead(rpq, "c", "t.x", [i], when=1_700_000_000.0 + i)
    r = client.post("/api/dead/delete", json={"all": True}, headers=headers)
    assert r.json() == {"deleted": 3, "skipped": 0}
    assert client.get("/api/dead").json() == {"total": 0, "items": []}
    # Deleting never touches live tasks.
    assert rpq.client.llen(rpq.keys.queue("a").ready) == 3


def test_delete_one_dead_letter(rpq: RPQueue, client: TestClient) -> None:
    gone = add_dead(rpq, "q", "t.x", [1])
    kept = add_dead(rpq, "q", "t.x", [2], when=1_700_000_001.0)
    r = client.post("/api/dead/delete", json={"items": [{"queue": "q", "id": gone},
                                                        {"queue": "q", "id": "no-such"}]},
                    headers=csrf_headers(client))
    assert r.json() == {"deleted": 1, "skipped": 0}
    k = rpq.keys.queue("q")
    assert rpq.client.zrange(k.dead, 0, -1) == [kept.encode()]
    assert rpq.client.hkeys(k.deadmsg) == [kept.encode()]


@pytest.mark.parametrize("body", [
    {}, {"items": []}, {"items": "x"}, {"items": [{"queue": "q"}]}, {"items": [{"id": "x"}]},
    {"items": [{"queue": "", "id": "x"}]}, {"items": [{"queue": "q", "id": 5}]}, {"items": [7]},
    {"all": True, "queue": ""}, {"all": "yes"}, [1, 2],
])
def test_dead_actions_refuse_malformed_bodies(client: TestClient, body: object) -> None:
    for action in ("requeue", "delete"):
        r = client.post(f"/api/dead/{action}", json=body, headers=csrf_headers(client))
        assert r.status_code == 400, (action, body)


def test_dead_actions_refuse_too_many_items_and_non_json(client: TestClient) -> None:
    headers = csrf_headers(client)
    many = {"items": [{"queue": "q", "id": str(i)} for i in range(1001)]}
    assert client.post("/api/dead/delete", json=many, headers=headers).status_code == 400
    r = client.post("/api/dead/delete", content=b"not json",
                    headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 400


# -- schedule and workers -------------------------------------------------------------------


def test_schedule_lists_periodic_and_cron_tasks_soonest_first(rpq: RPQueue, client: TestClient) -> None:
    for queue, name, when, described in (("a", "jobs.hourly", 1_800_000_000_500, "every 1h"),
                                          ("b", "jobs.monday", 1_700_000_000_000, "cron 0 5 * * mon")):
        k = rpq.keys.queue(queue)
        rpq.client.zadd(rpq.keys.queues, {queue: 1})
        rpq.client.zadd(k.periodic, {name: when})
        rpq.client.hset(k.periodic_def, name, described)
    body = client.get("/api/schedule").json()
    assert body["items"] == [
        {"name": "jobs.monday", "queue": "b", "schedule": "cron 0 5 * * mon", "tz": None,
         "next_run": 1_700_000_000.0},
        {"name": "jobs.hourly", "queue": "a", "schedule": "every 1h", "tz": None,
         "next_run": 1_800_000_000.5},
    ]
    assert body["now"] == pytest.approx(time.time(), abs=5)


def test_workers_section_lights_up_when_a_registry_exists(rpq: RPQueue, client: TestClient) -> None:
    body = client.get("/api/workers").json()
    assert body["available"] is False
    assert body["reason"] == "no workers running"
    assert body["key"] == "rpqueue:workers" and body["workers"] == []

    now = rpq.redis_time()
    live = {"id": "host-a:12:abc", "host": "host-a", "pid": 12, "queues": ["q"], "threads": 2,
            "started": now - 60, "beat": now - 1, "done": 5, "failed": 1,
            "running": [{"id": "t1", "task": "mail.send", "queue": "q", "for": 0.5}]}
    rpq.client.hset(rpq.keys.workers, mapping={
        "host-a:12:abc": json.dumps(live),
        # Stopped beating long ago: a worker that died without leaving.
        "host-a:9:old": json.dumps({**live, "id": "host-a:9:old", "beat": now - 3600}),
        "zz-other": "not json",
    })
    body = client.get("/api/workers").json()
    assert body["available"] is True and body["stale"] == 1
    assert body["workers"] == [live, {"id": "zz-other", "info": "not json"}]
    # Reading never prunes: that is for `rpqueue workers`, not a page refresh.
    assert rpq.client.hlen(rpq.keys.workers) == 3

    rpq.client.delete(rpq.keys.workers)
    rpq.client.set(rpq.keys.workers, "oops")
    body = client.get("/api/workers").json()
    assert body["available"] is False and "not a hash" in body["reason"]


def test_another_prefix_sees_only_its_own_queues(rpq: RPQueue, redis_url: str) -> None:
    enqueue(rpq, "t.x", "default-prefix-queue", 1)
    other = RPQueue("other-prefix", "shop:")
    other.set_redis_url(redis_url)
    enqueue(other, "t.x", "shop-queue", 1)
    with make_client(other) as c:
        assert [q["name"] for q in c.get("/api/queues").json()["queues"]] == ["shop-queue"]
        assert c.get("/api/session").json()["prefix"] == "shop:"


def test_unreachable_redis_is_a_503_with_a_reason() -> None:
    down = RPQueue("down")
    down.set_redis_url("redis://127.0.0.1:1/0", socket_timeout=2)
    with make_client(down) as c:
        r = c.get("/api/queues")
    assert r.status_code == 503
    assert r.json()["error"].startswith("Redis: ")
