"""The dashboard's actions, task page and small-screen layouts in headless
Chromium (issue #23). Same browser set-up as test_dashboard_browser.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from dashboard_support import LiveServer, Tab, Worker, add_dead, enqueue, open_dashboard, wait_until

from rpqueue.app import RPQueue

FAIL = "webtest:fail"  # shared with webtasks.py, which this process must not import
DONE = "webtest:done"


def test_a_queue_is_paused_and_resumed_from_its_row(rpq: RPQueue, live_server: LiveServer,
                                                    tab: Tab) -> None:
    from playwright.sync_api import expect

    enqueue(rpq, "mail.send", "alpha", 1)
    page = open_dashboard(tab, live_server)
    row = page.locator('#queues tbody tr[data-queue="alpha"]')
    expect(row.locator(".pill.paused")).to_have_count(0)
    row.get_by_role("button", name="Pause queue").click()
    expect(page.locator("#flash")).to_have_text("Paused queue alpha.")
    expect(row.locator(".pill.paused")).to_have_text("paused")
    assert rpq.is_paused("alpha")
    row.get_by_role("button", name="Resume queue").click()
    expect(page.locator("#flash")).to_have_text("Resumed queue alpha.")
    expect(row.locator(".pill.paused")).to_have_count(0)
    assert not rpq.is_paused("alpha")
    assert tab.errors == []


def test_the_refresh_button_says_what_it_stops(rpq: RPQueue, live_server: LiveServer,
                                               tab: Tab) -> None:
    from playwright.sync_api import expect

    page = open_dashboard(tab, live_server)
    button = page.locator("#autorefresh")
    expect(button).to_have_text("Stop auto-refresh")
    button.click()
    expect(page.locator("#status")).to_have_text("auto-refresh stopped")
    # Stopped: a task queued now does not show up.
    enqueue(rpq, "mail.send", "alpha", 1)
    page.wait_for_timeout(1500)
    expect(page.locator('#queues tbody tr[data-queue="alpha"]')).to_have_count(0)
    expect(button).to_have_text("Start auto-refresh")
    button.click()
    expect(page.locator('#queues tbody tr[data-queue="alpha"]')).to_have_count(1)
    assert tab.errors == []


def test_delete_and_run_now_on_queued_tasks(rpq: RPQueue, live_server: LiveServer, tab: Tab,
                                            start_worker: Callable[..., Worker]) -> None:
    from playwright.sync_api import expect

    start_worker("web")
    later = enqueue(rpq, "webtasks.sometimes", "web", "later", delay=3600)
    doomed = enqueue(rpq, "mail.send", "alpha", "never")
    kept = enqueue(rpq, "mail.send", "alpha", "kept")
    page = open_dashboard(tab, live_server)

    page.locator("#queues tbody").get_by_role("button", name="web", exact=True).click()
    row = page.locator(f'#items tbody tr[data-id="{later.taskid}"]')
    row.get_by_role("button", name="Run now").click()
    expect(page.locator("#flash")).to_have_text(f"Task {later.taskid} is due now.")
    wait_until(lambda: rpq.client.lrange(DONE, 0, -1) == [b"later"], what="the hurried task")
    expect(page.locator("#items-empty")).to_be_visible()

    page.locator("#queues tbody").get_by_role("button", name="alpha", exact=True).click()
    row = page.locator(f'#items tbody tr[data-id="{doomed.taskid}"]')
    # A waiting task is due already: it has no "Run now".
    expect(row.get_by_role("button", name="Run now")).to_have_count(0)
    row.get_by_role("button", name="Delete").click()
    assert tab.dialogs == [f"confirm: Delete task {doomed.taskid}? It will not run."]
    expect(page.locator("#flash")).to_have_text(f"Deleted task {doomed.taskid}.")
    expect(page.locator("#items tbody tr")).to_have_count(1)
    expect(page.locator("#items tbody tr")).to_have_attribute("data-id", kept.taskid)
    assert doomed.state == "cancelled"
    assert tab.errors == []


def test_clicking_a_task_opens_its_page_with_the_traceback(
        rpq: RPQueue, live_server: LiveServer, tab: Tab,
        start_worker: Callable[..., Worker]) -> None:
    from playwright.sync_api import expect

    rpq.client.sadd(FAIL, "crash")
    start_worker("web")
    bad = enqueue(rpq, "webtasks.sometimes", "web", "crash")
    wait_until(lambda: bad.state == "dead", what="the dead letter")
    queued = enqueue(rpq, "mail.send", "alpha", "<b>x</b>", {"n": 1})
    page = open_dashboard(tab, live_server)

    page.locator(f'#dead tbody tr[data-id="{bad.taskid}"] td.task-name a').click()
    section = page.locator("#task-section")
    expect(section).to_be_visible()
    expect(page.locator("#task-id")).to_have_text(bad.taskid)
    expect(page.locator("#task-state")).to_have_text("dead")
    expect(page.locator("#task-error")).to_contain_text("RuntimeError: told to fail: crash")
    expect(page.locator("#task-error")).to_contain_text("Traceback (most recent call last)")
    expect(page.locator('#task-fields dd[data-field="Args"]')).to_have_text('["crash"]')
    assert f"#task=web&id={bad.taskid}" in page.url

    page.locator("#queues tbody").get_by_role("button", name="alpha", exact=True).click()
    page.locator(f'#items tbody tr[data-id="{queued.taskid}"] a.detail').click()
    expect(page.locator("#task-state")).to_have_text("waiting")
    expect(page.locator('#task-fields dd[data-field="Args"]')).to_have_text('["<b>x</b>",{"n":1}]')
    expect(page.locator("#task-error")).to_be_hidden()

    # The address opens the same page on its own, and an unknown task says so.
    page.goto(f"{live_server.url}/#task=web&id={bad.taskid}")
    expect(page.locator("#task-state")).to_have_text("dead")
    page.goto(f"{live_server.url}/#task=web&id=no-such-task")
    expect(page.locator("#task-missing")).to_contain_text("Nothing is known about task no-such-task")
    page.locator("#task-close").click()
    expect(section).to_be_hidden()
    # Only the 404 of the unknown task, which Chromium logs.
    assert [e for e in tab.errors if "404" not in e] == []


def _fill_board(rpq: RPQueue) -> None:
    """Queues and dead letters with long names, ids and texts: what breaks layouts."""
    rpq.set_priority("notifications-transactional-eu-west", 1)
    for i in range(3):
        enqueue(rpq, "notifications.send_transactional_email_with_attachments",
                "notifications-transactional-eu-west", f"user-{i}@example.com",
                {"template": "invoice-reminder-second-notice", "locale": "pt-BR", "n": i},
                delay=600 * i)
    add_dead(rpq, "notifications-transactional-eu-west", "reports.build_quarterly_statement",
             [2026, "Q3", {"accounts": list(range(40))}],
             error="ConnectionRefusedError: could not reach the statement renderer at "
                   "http://renderer.internal.example.com:8443/v2/statements after 3 tries")


@pytest.mark.parametrize("width", [800, 375])
def test_nothing_is_cut_or_broken_on_narrow_screens(rpq: RPQueue, live_server: LiveServer,
                                                    tab: Tab, width: int) -> None:
    from playwright.sync_api import expect

    _fill_board(rpq)
    tab.page.set_viewport_size({"width": width, "height": 900})
    page = open_dashboard(tab, live_server)
    page.locator("#queues tbody").get_by_role("button",
                                              name="notifications-transactional-eu-west").click()
    expect(page.locator("#items tbody tr")).to_have_count(3)
    expect(page.locator("#dead tbody tr")).to_have_count(1)
    # The page itself never scrolls sideways: wide tables scroll in their box.
    sizes: dict[str, Any] = page.evaluate(
        "() => ({page: document.documentElement.scrollWidth, view: window.innerWidth})")
    assert sizes["page"] <= sizes["view"], sizes
    # And no column is cut: the queue, task and dead-letter tables fit whole.
    cut: list[str] = page.evaluate("""() => ['queues', 'items', 'dead'].filter((id) => {
      const wrap = document.getElementById(id).parentElement;
      return wrap.scrollWidth > wrap.clientWidth + 1;
    }).map((id) => {
      const wrap = document.getElementById(id).parentElement;
      return `${id}: ${wrap.scrollWidth} px in ${wrap.clientWidth}`;
    })""")
    assert cut == []
    # Every header button is on screen.
    for name in ("autorefresh",):
        box = page.locator(f"#{name}").bounding_box()
        assert box is not None and box["x"] + box["width"] <= width
    # Column titles, queue and task names are never split inside a word
    # (hyphens, dots, underscores, colons and slashes end words): every word fits its cell's width whole
    # (checked by rendering each word alone and comparing widths).
    broken: list[str] = page.evaluate("""() => {
      const out = [];
      for (const cell of document.querySelectorAll('th, td.task-name, td.queue-name')) {
        if (!cell.offsetParent) continue;
        for (const word of cell.textContent.split(/[\\s\\-._:/]+/).filter(Boolean)) {
          const probe = document.createElement('span');
          probe.style.cssText = 'position:absolute;white-space:nowrap;visibility:hidden';
          probe.textContent = word;
          cell.append(probe);
          const fits = probe.getBoundingClientRect().width <= cell.getBoundingClientRect().width;
          probe.remove();
          if (!fits) out.push(word);
        }
      }
      return out;
    }""")
    assert broken == []
    if width == 375:
        # Stacked: no table head; every value is labelled with its column.
        expect(page.locator("#queues thead")).to_be_hidden()
        depth = page.locator('#queues tbody tr td.depth').first
        label = depth.evaluate("td => getComputedStyle(td, '::before').content")
        assert label == '"Depth: "'
    else:
        expect(page.locator("#queues thead")).to_be_visible()
    assert tab.errors == []


def test_dead_letters_are_paged_newest_first_and_filtered(rpq: RPQueue, live_server: LiveServer,
                                                          tab: Tab) -> None:
    from playwright.sync_api import expect

    for i in range(30):
        add_dead(rpq, "mail" if i % 3 else "reports", "mail.send" if i % 3 else "reports.build",
                 [i], error="MemoryError" if i % 3 == 0 else f"SMTPError {i}",
                 taskid=f"d-{i:02}", when=1_700_000_000.0 + i)
    page = open_dashboard(tab, live_server)
    rows = page.locator("#dead tbody tr")
    expect(rows).to_have_count(25)
    expect(rows.first).to_have_attribute("data-id", "d-29")
    expect(page.locator("#dead-page")).to_have_text("page 1 of 2 · 30 dead letters, newest first")
    page.locator("#dead-next").click()
    expect(rows).to_have_count(5)
    expect(rows.last).to_have_attribute("data-id", "d-00")

    page.fill("#dead-f-error", "memoryerror")
    page.locator("#dead-filter").get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(10)
    expect(rows.first).to_have_attribute("data-id", "d-27")
    expect(page.locator("#dead-page")).to_have_text("page 1 of 1 · 10 matching of 30, newest first")
    page.fill("#dead-f-queue", "mail")
    page.locator("#dead-filter").get_by_role("button", name="Filter").click()
    expect(page.locator("#dead-empty")).to_have_text("No dead letter matches these filters.")
    page.get_by_role("button", name="Clear").click()
    expect(rows).to_have_count(25)
    assert tab.errors == []


def test_the_search_box_finds_tasks_queues_and_errors(rpq: RPQueue, live_server: LiveServer,
                                                      tab: Tab) -> None:
    from playwright.sync_api import expect

    task = enqueue(rpq, "mail.send", "mail-eu", "x")
    add_dead(rpq, "reports", "reports.build", [1], error="DiskFull: /var/reports", taskid="r-1")
    page = open_dashboard(tab, live_server)

    page.fill("#search-q", task.taskid)
    page.press("#search-q", "Enter")
    results = page.locator("#search-results")
    expect(results).to_contain_text(f"Task {task.taskid} in queue mail-eu (waiting)")
    results.get_by_role("link", name=task.taskid).click()
    expect(page.locator("#task-state")).to_have_text("waiting")

    page.fill("#search-q", "diskfull")
    page.press("#search-q", "Enter")
    results.get_by_role("button", name="1 dead letters with this in their error").click()
    expect(page.locator("#dead tbody tr")).to_have_count(1)
    expect(page.locator("#dead-f-error")).to_have_value("diskfull")

    page.fill("#search-q", "mail")
    page.press("#search-q", "Enter")
    results.get_by_role("button", name="mail-eu").click()
    expect(page.locator("#items-queue")).to_have_text("mail-eu")
    page.fill("#search-q", "nothing at all")
    page.press("#search-q", "Enter")
    expect(results).to_have_text("Nothing found.")
    assert tab.errors == []


def test_data_queues_and_failed_counts_are_shown(rpq: RPQueue, live_server: LiveServer,
                                                 tab: Tab) -> None:
    from playwright.sync_api import expect

    from rpqueue.data import Data

    page = open_dashboard(tab, live_server)
    expect(page.locator("#data-section")).to_be_hidden()
    Data("uploads", vis_timeout=60, app=rpq).put_data([1, 2, 3])
    enqueue(rpq, "mail.send", "alpha", 1)
    # Counters as workers keep them (docs/PROTOCOL.md): two attempts failed.
    rpq.client.hincrby(rpq.keys.queue("alpha").stats, "failed", 2)
    row = page.locator('#data tbody tr[data-queue="uploads"]')
    expect(row.locator("td.items")).to_have_text("3")
    expect(row.locator("td.available")).to_have_text("3")
    expect(page.locator('#queues tbody tr[data-queue="alpha"] td.failed')).to_have_text("2")
    assert tab.errors == []


def test_a_queue_page_charts_its_history(rpq: RPQueue, live_server: LiveServer, tab: Tab) -> None:
    from playwright.sync_api import expect

    from rpqueue.storage import history_io

    enqueue(rpq, "mail.send", "alpha", 1)
    wait_until(lambda: rpq.store.redis_time() % 60 < 50, timeout=15, what="a fresh minute")
    _, now = history_io.redis_minute(rpq.store)
    for i, done in enumerate([0, 30, 75, 90, 150, 180]):
        key = history_io.minute_key(rpq.store, "alpha", now - 5 + i)
        rpq.client.set(key, history_io.encode({"done": done, "failed": i, "depth": 10 - i,
                                               "t": ((now - 5 + i) * 60 + 30) * 1000}))
    page = open_dashboard(tab, live_server)
    page.locator("#queues tbody").get_by_role("button", name="alpha", exact=True).click()
    chart = page.locator("#history-chart svg")
    expect(chart.locator("polyline.chart-processed")).to_have_count(1)
    expect(chart.locator("polyline.chart-failed")).to_have_count(1)
    expect(chart.locator("polygon.chart-depth")).to_have_count(1)
    expect(page.locator("#history-rate")).to_contain_text("/s processed")
    expect(page.locator("#history-empty")).to_be_hidden()
    page.get_by_role("button", name="Last day").click()
    expect(page.locator("#history-day")).to_have_attribute("aria-pressed", "true")
    expect(chart.locator("title")).to_contain_text("over the last day")
    assert tab.errors == []
