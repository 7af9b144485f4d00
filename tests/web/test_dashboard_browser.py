"""The dashboard end to end in headless Chromium (issue #8).

Needs Debian's ``chromium`` (apt-get install -y chromium) and the pip
package ``playwright``, driven against the system browser: ``playwright
install`` is never run. Missing either fails these tests, as a missing
redis-server fails the suite: a green run that skipped the browser would
claim more than it checked. Set RPQUEUE_SKIP_BROWSER_TESTS=1 to skip them
on purpose.

Also takes the README's screenshots, docs/images/dashboard.png (1400 px
wide), dashboard-800.png and dashboard-375.png (written there when
RPQUEUE_UPDATE_SCREENSHOT=1, else to the temp directory).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dashboard_support import LiveServer, Tab, Worker, add_dead, enqueue, open_dashboard, wait_until

from rpqueue.app import RPQueue
from rpqueue.data import Data
from rpqueue.storage import history_io

# The README's screenshot is rewritten only on request
# (RPQUEUE_UPDATE_SCREENSHOT=1), so ordinary runs leave the checkout clean.
SCREENSHOTS = (Path(__file__).resolve().parents[2] / "docs" / "images"
               if os.environ.get("RPQUEUE_UPDATE_SCREENSHOT")
               else Path(tempfile.gettempdir()) / "rpqueue-screenshots")
# Page width -> file name.
SCREENSHOT_WIDTHS = {1400: "dashboard.png", 800: "dashboard-800.png", 375: "dashboard-375.png"}
# Key names shared with webtasks.py, which this process must not import
# (its tasks would register in this process's default app).
FAIL = "webtest:fail"
DONE = "webtest:done"

SCRIPT = "<script>window.__xss=1</script>"
IMG = "<img src=x onerror=window.__xss=2>"


def test_page_loads_and_a_queued_task_shows_up(rpq: RPQueue, live_server: LiveServer,
                                               tab: Tab) -> None:
    from playwright.sync_api import expect

    page = open_dashboard(tab, live_server)
    expect(page).to_have_title("rpqueue dashboard")
    expect(page.locator("#queues-empty")).to_be_visible()
    expect(page.locator("#workers-note")).to_have_text("no workers running")
    expect(page.locator("#dead-empty")).to_be_visible()

    # Queued after the page loaded: it must arrive by the live update.
    task = enqueue(rpq, "webtasks.sometimes", "web", "hello", 42, note="first")
    row = page.locator('#queues tbody tr[data-queue="web"]')
    expect(row.locator("td.depth")).to_have_text("1")
    row.get_by_role("button", name="web").click()
    item = page.locator(f'#items tbody tr[data-id="{task.taskid}"]')
    expect(item.locator("td.task-name")).to_have_text("webtasks.sometimes")
    expect(item.locator("td.args")).to_have_text('["hello",42]')
    expect(item.locator("td.kwargs")).to_have_text('{"note":"first"}')
    expect(page.locator("#items-page")).to_have_text("page 1 of 1 (1 tasks)")
    expect(item.locator("td.priority")).to_have_text("0")

    # Queue policies reach the page: a bound, a per-message priority, a unique key.
    rpq.set_queue_limit("web", 40, overflow="drop_oldest")
    urgent = enqueue(rpq, "webtasks.sometimes", "web", "urgent", priority=-2, unique_for=60,
                     unique_key="u1")
    expect(row.locator("td.limit")).to_have_text("40 (drop oldest)")
    first = page.locator("#items tbody tr").first
    expect(first).to_have_attribute("data-id", urgent.taskid)
    expect(first.locator("td.priority")).to_have_text("-2")
    expect(first.locator("td.unique")).to_have_text("webtasks.sometimes:u1")
    assert tab.errors == [] and tab.dialogs == []


def test_one_failing_view_leaves_the_others_showing(rpq: RPQueue, live_server: LiveServer,
                                                     tab: Tab) -> None:
    """Issue #25: the views load independently (one 503 empties nothing else),
    and malformed records show as unreadable."""
    from playwright.sync_api import expect

    enqueue(rpq, "webtasks.sometimes", "web", "still shown")
    dead_id = add_dead(rpq, "web", "webtasks.sometimes", [1])
    k = rpq.keys.queue("web")
    rpq.client.hset(k.deadmsg, "odd", "[1,2]")
    rpq.client.zadd(k.dead, {"odd": 1})
    rpq.client.hset(rpq.keys.workers, "w-odd", json.dumps({"beat": time.time(), "running": [None]}))
    # Only the schedule view reads this key: of the wrong type, it answers 503.
    rpq.client.set(k.periodic, "not a sorted set")
    page = tab.page
    page.goto(live_server.url)
    expect(page.locator("#status")).to_contain_text("schedule")
    expect(page.locator('#queues tbody tr[data-queue="web"] td.depth')).to_have_text("1")
    expect(page.locator(f'#dead tbody tr[data-id="{dead_id}"]')).to_have_count(1)
    expect(page.locator('#dead tbody tr[data-id="odd"] td.task-name')).to_have_text(
        "(unreadable record odd)")
    expect(page.locator('#workers tbody tr[data-id="w-odd"]')).to_contain_text("(unreadable)")
    assert [e for e in tab.errors if "503" not in e] == []


def test_a_dead_letter_is_requeued_by_a_click_and_then_runs(
        rpq: RPQueue, live_server: LiveServer, tab: Tab,
        start_worker: Callable[..., Worker]) -> None:
    from playwright.sync_api import expect

    dead = rpq.keys.queue("web").dead
    rpq.client.sadd(FAIL, "phoenix")
    worker = start_worker("web")
    task = enqueue(rpq, "webtasks.sometimes", "web", "phoenix")
    wait_until(lambda: rpq.client.zscore(dead, task.taskid) is not None, what="the dead letter")
    rpq.client.srem(FAIL, "phoenix")

    page = open_dashboard(tab, live_server)
    row = page.locator(f'#dead tbody tr[data-id="{task.taskid}"]')
    expect(row.locator("td.task-name")).to_have_text("webtasks.sometimes")
    expect(row.locator("td.error")).to_contain_text("told to fail: phoenix")
    expect(page.locator("#dead-count")).to_have_text("1")
    # The worker is in the registry, so the workers section lights up.
    worker_row = page.locator("#workers tbody tr")
    expect(worker_row).to_have_count(1)
    expect(worker_row.locator('td[data-field="pid"]')).to_have_text(str(worker.proc.pid))
    expect(worker_row.locator('td[data-field="queues"]')).to_have_text("web")
    row.get_by_role("button", name="Requeue").click()
    expect(page.locator("#flash")).to_have_text("Requeued 1 dead letter.")
    # The same task, requeued, now runs to completion in the real worker.
    wait_until(lambda: rpq.client.lrange(DONE, 0, -1) == [b"phoenix"], what="the rerun")
    expect(page.locator("#dead-empty")).to_be_visible()
    expect(page.locator("#dead-count")).to_have_text("")
    expect(worker_row.locator('td[data-field="done"]')).to_have_text("1")
    assert rpq.client.zcard(dead) == 0
    assert tab.errors == []


def test_requeue_all_and_delete_all_ask_first(rpq: RPQueue, live_server: LiveServer,
                                              tab: Tab) -> None:
    from playwright.sync_api import expect

    for i in range(3):
        add_dead(rpq, f"q{i}", "t.x", [i], when=1_700_000_000.0 + i)
    page = open_dashboard(tab, live_server)
    expect(page.locator("#dead tbody tr")).to_have_count(3)

    tab.accept_dialogs = False
    page.get_by_role("button", name="Delete all").click()
    assert tab.dialogs == ["confirm: Delete all 3 dead letters? This cannot be undone."]
    page.wait_for_timeout(300)
    assert sum(rpq.client.zcard(rpq.keys.queue(f"q{i}").dead) for i in range(3)) == 3

    tab.accept_dialogs = True
    page.get_by_role("button", name="Requeue all").click()
    expect(page.locator("#flash")).to_have_text("Requeued 3 dead letters.")
    expect(page.locator("#dead-empty")).to_be_visible()
    assert [rpq.client.llen(rpq.keys.queue(f"q{i}").ready) for i in range(3)] == [1, 1, 1]

    add_dead(rpq, "q0", "t.x", ["again"])
    expect(page.locator("#dead tbody tr")).to_have_count(1)
    page.get_by_role("button", name="Delete all").click()
    expect(page.locator("#flash")).to_have_text("Deleted 1 dead letters.")
    expect(page.locator("#dead-empty")).to_be_visible()
    assert rpq.client.zcard(rpq.keys.queue("q0").dead) == 0
    assert tab.errors == []


def test_script_and_markup_in_task_data_stay_inert_text(rpq: RPQueue, live_server: LiveServer,
                                                        tab: Tab) -> None:
    from playwright.sync_api import expect

    evil_queue = "<script>window.__xss=4</script>"
    evil_name = "<img src=x onerror=window.__xss=3>"
    args_task = enqueue(rpq, "webtasks.sometimes", "web", SCRIPT, IMG)
    evil_kwargs: dict[str, Any] = {IMG: SCRIPT}
    name_task = enqueue(rpq, evil_name, "web", 1, **evil_kwargs)
    enqueue(rpq, "t.x", evil_queue, 1)
    add_dead(rpq, "web", evil_name, [SCRIPT], error=IMG, taskid="dead-evil")
    k = rpq.keys.queue("web")
    rpq.client.zadd(k.periodic, {evil_name: 1_900_000_000_000})
    rpq.client.hset(k.periodic_def, evil_name, SCRIPT)
    rpq.client.hset(rpq.keys.workers, IMG, json.dumps({"host": SCRIPT, IMG: IMG}))

    page = open_dashboard(tab, live_server)
    expect(page.locator("#queues tbody").get_by_role("button", name=evil_queue)).to_have_text(evil_queue)
    page.locator("#queues tbody").get_by_role("button", name="web", exact=True).click()

    literal_args = json.dumps([SCRIPT, IMG], separators=(",", ":"))
    args_row = page.locator(f'#items tbody tr[data-id="{args_task.taskid}"]')
    expect(args_row.locator("td.args")).to_have_text(literal_args)
    name_row = page.locator(f'#items tbody tr[data-id="{name_task.taskid}"]')
    expect(name_row.locator("td.task-name")).to_have_text(evil_name)
    expect(name_row.locator("td.kwargs")).to_have_text(json.dumps({IMG: SCRIPT}, separators=(",", ":")))
    dead_row = page.locator('#dead tbody tr[data-id="dead-evil"]')
    expect(dead_row.locator("td.task-name")).to_have_text(evil_name)
    expect(dead_row.locator("td.error")).to_have_text(IMG)
    expect(dead_row.locator("td.args")).to_have_text(json.dumps([SCRIPT]))
    expect(page.locator("#schedule tbody td.task-name")).to_have_text(evil_name)
    expect(page.locator("#schedule tbody td.mono")).to_have_text(SCRIPT)
    workers = page.locator("#workers tbody")
    expect(workers).to_contain_text(SCRIPT)
    expect(page.locator("#workers thead")).to_contain_text(IMG)

    # Give a live handler every chance to fire: several polls re-render it all.
    page.wait_for_timeout(1500)
    assert page.evaluate("() => window.__xss") is None
    # Shown as text, so no element was ever made from it: the only script
    # is the page's own, and the page has no images at all.
    assert page.locator("script").count() == 1
    assert page.locator("img").count() == 0
    # CSP violations (what an injected inline script would cause) would be here.
    assert tab.errors == [] and tab.dialogs == []


def test_with_a_token_the_login_form_opens_the_page(rpq: RPQueue, tab: Tab) -> None:
    from playwright.sync_api import expect

    enqueue(rpq, "t.x", "secret-queue", 1)
    server = LiveServer(rpq, token="s3cret token for the browser").start()
    try:
        page = tab.page
        page.goto(server.url)
        expect(page).to_have_url(f"{server.url}/login")
        page.fill("#token", "a guess")
        page.get_by_role("button", name="Log in").click()
        expect(page.locator(".login-box .error")).to_have_text("Wrong token.")
        page.fill("#token", "s3cret token for the browser")
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{server.url}/")
        expect(page.locator('#queues tbody tr[data-queue="secret-queue"]')).to_have_count(1)
        page.get_by_role("button", name="Log out").click()
        expect(page).to_have_url(f"{server.url}/login")
        page.goto(server.url)
        expect(page).to_have_url(f"{server.url}/login")
    finally:
        server.stop()
    # The wrong guess is a 401 document load, which Chromium logs as a console error.
    assert [e for e in tab.errors if "401" not in e] == []


def test_screenshot_for_the_readme(rpq: RPQueue, redis_url: str, tab: Tab,
                                   start_worker: Callable[..., Worker]) -> None:
    """A realistic board: a real worker, real failures, real schedules, live rates."""
    from playwright.sync_api import expect

    rpq.set_priority("web", 1)
    rpq.set_priority("emails", 2)
    for i, user in enumerate(["ana", "bo", "chidi", "dana", "eli", "fay", "gus"]):
        enqueue(rpq, "mail.send_welcome", "emails", f"{user}@example.com", template="welcome-v2",
                delay=0 if i < 4 else 300 + 60 * i)
    for month in (9, 10, 11):
        enqueue(rpq, "reports.build_monthly", "reports", 2026, month, delay=3600 * month)
    rpq.pause_queue("reports")
    Data("thumbnails", vis_timeout=60, app=rpq).put_data([f"img-{i}.jpg" for i in range(12)])
    # An hour of history for the opened queue, in the format workers write
    # (storage/history_io.py): a morning mail-out rising and draining.
    _, minute = history_io.redis_minute(rpq.store)
    done = failed = 0
    for i in range(61):
        done += int(40 + 35 * math.sin(i / 9) ** 2)
        failed += i % 13 == 0
        rpq.client.set(history_io.minute_key(rpq.store, "emails", minute - 60 + i),
                       history_io.encode({"done": done, "failed": failed,
                                          "depth": int(30 + 25 * math.cos(i / 11)),
                                          "t": ((minute - 60 + i) * 60 + 30) * 1000}))
    rpq.client.sadd(FAIL, "invoice-4411", "invoice-4412")
    start_worker("web")
    for label in ("invoice-4411", "invoice-4412"):
        enqueue(rpq, "webtasks.sometimes", "web", label, {"amount": 129.5})
    wait_until(lambda: rpq.client.zcard(rpq.keys.queue("web").dead) == 2, what="two dead letters")

    def traffic() -> None:
        # Real work for the sparkline: bursts that the worker drains as they come.
        for burst in (4, 10, 18, 26, 30, 24, 16, 22, 34, 28, 20, 26, 30, 24) * 3:
            for n in range(burst):
                enqueue(rpq, "webtasks.sometimes", "web", f"page-view-{burst}-{n}")
            time.sleep(0.3)

    server = LiveServer(rpq, poll_interval=0.4).start()
    producer = threading.Thread(target=traffic)
    try:
        page = open_dashboard(tab, server)
        producer.start()
        page.locator("#queues tbody").get_by_role("button", name="emails").click()
        expect(page.locator("#items tbody tr")).to_have_count(7)
        expect(page.locator("#schedule tbody tr")).to_have_count(2)
        expect(page.locator("#workers tbody tr")).to_have_count(1)
        # Taken while the traffic still flows, once the sparkline has a few points.
        page.wait_for_timeout(3000)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for width, name in SCREENSHOT_WIDTHS.items():
            page.set_viewport_size({"width": width, "height": 900})
            page.wait_for_timeout(600)
            page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
        assert producer.is_alive(), "the traffic ended before the screenshot"
        assert page.locator('#queues tbody tr[data-queue="web"] polyline').count() == 1
    finally:
        producer.join()
        server.stop()
    for name in SCREENSHOT_WIDTHS.values():
        assert (SCREENSHOTS / name).stat().st_size > 10_000
    assert tab.errors == []
