"""The dashboard's queue and task actions and the task page's JSON (issue #23),
against a real Redis and, where a task must really run, a real worker."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from dashboard_support import TestClient, Worker, add_dead, csrf_headers, enqueue, wait_until

from rpqueue.app import RPQueue

FAIL = "webtest:fail"  # shared with webtasks.py, which this process must not import


# -- pausing and resuming a queue -------------------------------------------------


def test_pause_and_resume_a_queue_show_in_the_queue_list(rpq: RPQueue, client: TestClient) -> None:
    enqueue(rpq, "mail.send", "alpha", 1)
    headers = csrf_headers(client)
    r = client.post("/api/queue/pause", json={"queue": "alpha"}, headers=headers)
    assert r.status_code == 200
    assert r.json() == {"queue": "alpha", "paused": True, "changed": True}
    assert rpq.is_paused("alpha")
    (alpha,) = client.get("/api/queues").json()["queues"]
    assert alpha["paused"] is True
    again = client.post("/api/queue/pause", json={"queue": "alpha"}, headers=headers)
    assert again.json()["changed"] is False
    r = client.post("/api/queue/resume", json={"queue": "alpha"}, headers=headers)
    assert r.json() == {"queue": "alpha", "paused": False, "changed": True}
    assert not rpq.is_paused("alpha")
    assert client.get("/api/queues").json()["queues"][0]["paused"] is False


@pytest.mark.parametrize("path", ["/api/queue/pause", "/api/queue/resume", "/api/task/delete",
                                  "/api/task/run_now"])
def test_actions_need_the_csrf_token(rpq: RPQueue, client: TestClient, path: str) -> None:
    r = client.post(path, json={"queue": "alpha", "id": "x"})
    assert r.status_code == 403 and r.json()["code"] == "csrf"
    assert not rpq.is_paused("alpha")


@pytest.mark.parametrize("body", [{}, {"queue": ""}, {"queue": 5}, [1]])
def test_pause_refuses_a_body_without_a_queue(client: TestClient, body: object) -> None:
    for action in ("pause", "resume"):
        r = client.post(f"/api/queue/{action}", json=body, headers=csrf_headers(client))
        assert r.status_code == 400, (action, body)
        assert "error" in r.json()


def test_a_paused_queue_is_not_served_until_resumed(
        rpq: RPQueue, client: TestClient, start_worker: Callable[..., Worker]) -> None:
    done = "webtest:done"
    headers = csrf_headers(client)
    client.post("/api/queue/pause", json={"queue": "web"}, headers=headers)
    start_worker("web")
    enqueue(rpq, "webtasks.sometimes", "web", "held")
    # The worker is up and serving "web"; nothing runs while it is paused.
    wait_until(lambda: rpq.client.hlen(rpq.keys.workers) == 1, what="the worker to register")
    assert client.get("/api/queues").json()["queues"][0]["waiting"] == 1
    client.post("/api/queue/resume", json={"queue": "web"}, headers=headers)
    wait_until(lambda: rpq.client.lrange(done, 0, -1) == [b"held"], what="the task to run")


# -- deleting a queued task ----------------------------------------------------------


def test_delete_removes_a_waiting_or_delayed_task_and_nothing_else(
        rpq: RPQueue, client: TestClient) -> None:
    waiting = enqueue(rpq, "mail.send", "alpha", "w")
    delayed = enqueue(rpq, "mail.send", "alpha", "d", delay=600)
    kept = enqueue(rpq, "mail.send", "alpha", "k")
    headers = csrf_headers(client)
    for task in (waiting, delayed):
        r = client.post("/api/task/delete", json={"queue": "alpha", "id": task.taskid},
                        headers=headers)
        assert r.status_code == 200 and r.json() == {"deleted": True}
    items = client.get("/api/items", params={"queue": "alpha"}).json()
    assert [i["id"] for i in items["items"]] == [kept.taskid]
    assert client.get(f"/api/task/{waiting.taskid}", params={"queue": "alpha"}).json()[
        "state"] == "cancelled"
    gone = client.post("/api/task/delete", json={"queue": "alpha", "id": waiting.taskid},
                       headers=headers)
    assert gone.json() == {"deleted": False}


@pytest.mark.parametrize("body", [{}, {"queue": "q"}, {"id": "x"}, {"queue": "q", "id": ""},
                                  {"queue": "q", "id": 3}])
def test_delete_and_run_now_refuse_malformed_bodies(client: TestClient, body: object) -> None:
    for action in ("delete", "run_now"):
        r = client.post(f"/api/task/{action}", json=body, headers=csrf_headers(client))
        assert r.status_code == 400 and "must be a non-empty string" in r.json()["error"]


def test_delete_leaves_a_finished_tasks_result_alone(
        rpq: RPQueue, client: TestClient, start_worker: Callable[..., Worker]) -> None:
    start_worker("web")
    task = enqueue(rpq, "webtasks.sometimes", "web", "kept result")
    assert task.get(timeout=15) == "kept result"
    r = client.post("/api/task/delete", json={"queue": "web", "id": task.taskid},
                    headers=csrf_headers(client))
    assert r.json() == {"deleted": False}
    assert task.get(timeout=1) == "kept result"
    assert task.state == "succeeded"


def test_run_now_makes_a_delayed_task_run_at_once(
        rpq: RPQueue, client: TestClient, start_worker: Callable[..., Worker]) -> None:
    start_worker("web")
    task = enqueue(rpq, "webtasks.sometimes", "web", "hurried", delay=3600)
    waiting = enqueue(rpq, "mail.send", "alpha", "not delayed")
    headers = csrf_headers(client)
    r = client.post("/api/task/run_now", json={"queue": "web", "id": task.taskid},
                    headers=headers)
    assert r.status_code == 200 and r.json() == {"moved": True}
    assert task.get(timeout=15) == "hurried"
    # Only a delayed task can be hurried: a waiting one already is due.
    r = client.post("/api/task/run_now", json={"queue": "alpha", "id": waiting.taskid},
                    headers=headers)
    assert r.json() == {"moved": False}
    assert client.get(f"/api/task/{waiting.taskid}", params={"queue": "alpha"}).json()[
        "state"] == "waiting"


# -- the task page's JSON ----------------------------------------------------------


def test_task_detail_of_queued_and_delayed_tasks(rpq: RPQueue, client: TestClient) -> None:
    waiting = enqueue(rpq, "mail.send", "alpha", "ünï", {"deep": [1]}, note="x" * 2000)
    delayed = enqueue(rpq, "mail.send", "alpha", 2, delay=600)
    body = client.get(f"/api/task/{waiting.taskid}", params={"queue": "alpha"}).json()
    assert body["state"] == "waiting" and body["name"] == "mail.send"
    # The page has the arguments whole, unlike a listing.
    assert body["args"] == ["ünï", {"deep": [1]}] and body["kwargs"] == {"note": "x" * 2000}
    assert (body["attempt"], body["error"], body["result"], body["dead"]) == (1, None, None, None)
    later = client.get(f"/api/task/{delayed.taskid}", params={"queue": "alpha"}).json()
    assert later["state"] == "delayed" and later["args"] == [2]


def test_task_detail_of_unknown_tasks_and_bad_requests(client: TestClient) -> None:
    r = client.get("/api/task/no-such-id", params={"queue": "alpha"})
    assert r.status_code == 404 and "no-such-id" in r.json()["error"]
    r = client.get("/api/task/some-id")
    assert r.status_code == 400 and r.json()["error"] == "the queue parameter is required"


def test_task_detail_of_a_dead_letter_written_by_hand(rpq: RPQueue, client: TestClient) -> None:
    taskid = add_dead(rpq, "q", "t.x", [1, "<b>"], error="boom", taskid="id/with slash")
    body = client.get("/api/task/id/with slash", params={"queue": "q"}).json()
    assert body["id"] == taskid and body["name"] == "t.x" and body["args"] == [1, "<b>"]
    assert body["dead"]["error"] == "boom" and body["dead"]["reason"] == "task raised an exception"


def test_task_detail_after_a_real_run_has_result_error_and_traceback(
        rpq: RPQueue, client: TestClient, start_worker: Callable[..., Worker]) -> None:
    rpq.client.sadd(FAIL, "doomed")
    start_worker("web")
    ok = enqueue(rpq, "webtasks.sometimes", "web", "fine")
    bad = enqueue(rpq, "webtasks.sometimes", "web", "doomed")
    assert ok.get(timeout=15) == "fine"
    wait_until(lambda: bad.state == "dead", what="the failing task to die")

    body = client.get(f"/api/task/{ok.taskid}", params={"queue": "web"}).json()
    assert body["state"] == "succeeded" and body["error"] is None
    assert json.loads(body["result"]["text"]) == "fine"
    assert body["finished"] == pytest.approx(time.time(), abs=60)

    dead = client.get(f"/api/task/{bad.taskid}", params={"queue": "web"}).json()
    assert dead["state"] == "dead"
    assert dead["error"]["type"] == "RuntimeError"
    assert dead["error"]["message"] == "told to fail: doomed"
    assert "Traceback" in dead["error"]["traceback"] and "told to fail" in dead["error"]["traceback"]
    # The dead letter still has the message, so the page shows the call too.
    assert dead["name"] == "webtasks.sometimes" and dead["args"] == ["doomed"]
    assert dead["dead"]["error"]
