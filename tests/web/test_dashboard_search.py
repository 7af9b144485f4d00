"""Dead letters paged newest first and filtered, and the page's search box
(issue #23), against a real Redis."""

from __future__ import annotations

import pytest
from dashboard_support import TestClient, add_dead, enqueue

from rpqueue.app import RPQueue
from rpqueue.views import dead


def _fill(rpq: RPQueue) -> None:
    for i in range(7):
        add_dead(rpq, "mail", "mail.send", [i], error=f"SMTPError: relay {i} refused",
                 taskid=f"mail-{i}", when=1_700_000_000.0 + i)
    for i in range(3):
        add_dead(rpq, "reports", "reports.build", [i], error="MemoryError",
                 taskid=f"rep-{i}", when=1_700_000_000.5 + i)


def test_dead_letters_page_newest_first_across_queues(rpq: RPQueue, client: TestClient) -> None:
    _fill(rpq)
    first = client.get("/api/dead", params={"page": 0, "per_page": 4}).json()
    assert [d["id"] for d in first["items"]] == ["mail-6", "mail-5", "mail-4", "mail-3"]
    assert (first["total"], first["matched"], first["complete"]) == (10, 10, True)
    last = client.get("/api/dead", params={"page": 2, "per_page": 4}).json()
    assert [d["id"] for d in last["items"]] == ["rep-0", "mail-0"]
    one = client.get("/api/dead", params={"queue": "reports", "per_page": 2}).json()
    assert [d["id"] for d in one["items"]] == ["rep-2", "rep-1"] and one["total"] == 3
    # The first API is unchanged: the oldest ``limit``.
    old = client.get("/api/dead", params={"limit": 2}).json()
    assert [d["id"] for d in old["items"]] == ["mail-0", "rep-0"]


def test_dead_letters_filter_by_name_error_and_id(rpq: RPQueue, client: TestClient) -> None:
    _fill(rpq)
    by_error = client.get("/api/dead", params={"error": "smtperror", "per_page": 3}).json()
    assert [d["id"] for d in by_error["items"]] == ["mail-6", "mail-5", "mail-4"]
    assert (by_error["matched"], by_error["total"]) == (7, 10)
    by_name = client.get("/api/dead", params={"name": "REPORTS."}).json()
    assert [d["id"] for d in by_name["items"]] == ["rep-2", "rep-1", "rep-0"]
    both = client.get("/api/dead", params={"name": "mail", "error": "relay 3"}).json()
    assert [d["id"] for d in both["items"]] == ["mail-3"]
    by_id = client.get("/api/dead", params={"id": "rep-1", "queue": "reports"}).json()
    assert [d["id"] for d in by_id["items"]] == ["rep-1"]
    none = client.get("/api/dead", params={"error": "nothing like this"}).json()
    assert (none["items"], none["matched"]) == ([], 0)


def test_a_filtered_search_is_bounded_and_says_so(rpq: RPQueue) -> None:
    _fill(rpq)
    found = dead.search(rpq.ctx, "mail", error="relay", scan=4)
    assert found["complete"] is False and found["matched"] == 4
    assert dead.search(rpq.ctx, "mail", error="relay", scan=7)["complete"] is True


@pytest.mark.parametrize("query", [{"page": "-1"}, {"per_page": "0"}, {"per_page": "x"},
                                   {"name": "n" * 201}])
def test_dead_search_refuses_bad_parameters(client: TestClient, query: dict[str, str]) -> None:
    r = client.get("/api/dead", params=query)
    assert r.status_code == 400 and r.json()["error"]


def test_search_finds_queues_tasks_by_id_and_dead_letters(rpq: RPQueue,
                                                          client: TestClient) -> None:
    _fill(rpq)
    task = enqueue(rpq, "mail.send", "mail-eu", "x")
    found = client.get("/api/search", params={"q": "mail"}).json()
    assert found["queues"] == ["mail", "mail-eu"]
    assert (found["dead_by_name"], found["dead_by_error"], found["complete"]) == (7, 0, True)
    by_id = client.get("/api/search", params={"q": task.taskid}).json()
    assert by_id["tasks"] == [{"queue": "mail-eu", "state": "waiting"}]
    dead_id = client.get("/api/search", params={"q": "rep-1"}).json()
    assert dead_id["tasks"] == [{"queue": "reports", "state": "dead"}]
    assert client.get("/api/search", params={"q": "MemoryError"}).json()["dead_by_error"] == 3


@pytest.mark.parametrize("query", [{}, {"q": "  "}, {"q": "x" * 201}])
def test_search_refuses_an_empty_or_huge_query(client: TestClient, query: dict[str, str]) -> None:
    r = client.get("/api/search", params=query)
    assert r.status_code == 400 and "q" in r.json()["error"]


def test_data_queues_are_listed_with_their_counts(rpq: RPQueue, client: TestClient) -> None:
    from rpqueue.data import Data

    assert client.get("/api/data").json() == {"queues": []}
    jobs = Data("jobs", vis_timeout=60, app=rpq)
    jobs.put_data(["a", "b", "c", "d"])
    jobs.put_data(["later"], delay=600)
    assert len(jobs.get_data(items=1)) == 1  # leased for a minute
    Data("empty", app=rpq).put_data(["x"])
    Data("empty", app=rpq).get_data(items=1, vis_timeout=0)
    body = client.get("/api/data").json()
    assert body["queues"] == [
        {"name": "empty", "items": 0, "available": 0, "delayed": 0, "leased": 0, "dead": 0},
        {"name": "jobs", "items": 5, "available": 3, "delayed": 1, "leased": 1, "dead": 0}]
    # Data queues are not task queues: the task list does not show them.
    assert [q["name"] for q in client.get("/api/queues").json()["queues"]] == []
