"""A cron task in a named zone, registered by a real worker: the schedule
listing (the read model, ``rpqueue schedule``, the dashboard's API) shows
its zone, and its first run is 05:00 Paris time (issue 22)."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from support.worker import Workers, wait_until, worker_env

import rpqueue
from rpqueue.views import schedules

MODS = Path(__file__).parent / "ecosystemmods"


def test_schedule_listing_shows_the_zone(app: rpqueue.RPQueue, workers: Workers,
                                         redis_url: str) -> None:
    eco = {"PYTHONPATH": str(MODS), "ECO_REDIS_URL": redis_url}
    workers.start("tz_tasks", "tzq", env=eco)

    def listed() -> list[dict[str, Any]]:
        return [i for i in schedules.listing(app.ctx)["items"]
                if i["name"] == "tz_tasks.paris_morning"]

    (item,) = wait_until(listed, message="the worker registering tz_tasks.paris_morning")
    assert item["tz"] == "Europe/Paris"
    assert item["schedule"] == "cron '0 5 * * *' (Europe/Paris)"
    first = datetime.fromtimestamp(item["next_run"], ZoneInfo("Europe/Paris"))
    assert (first.hour, first.minute, first.second) == (5, 0, 0)
    # The worker published the zone with the task's settings.
    assert app.read_registry()["tz_tasks.paris_morning"]["tz"] == "Europe/Paris"

    done = subprocess.run([sys.executable, "-m", "rpqueue", "schedule", "--url", redis_url],
                          capture_output=True, text=True, timeout=60,
                          env=worker_env({**eco, "COLUMNS": "200"}))
    assert done.returncode == 0, done.stderr
    assert "Europe/Paris" in done.stdout
