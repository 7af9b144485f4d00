"""Tasks of a second, independent rpqueue instance next to the default one.

Both define a task called "shared.name" with different bodies: which body
runs shows whose registry the worker used.
"""

from __future__ import annotations

from ledger import note

import rpqueue

APP = rpqueue.new_rpqueue("other", "other:")


@APP.task(name="shared.name")
def shared_other(tag: str) -> None:
    note("ran", app=APP, tag=tag, owner="other")


@rpqueue.task(name="shared.name")
def shared_default(tag: str) -> None:
    note("ran", tag=tag, owner="default")


@APP.task(queue="other-only")
def only_in_other(tag: str) -> None:
    note("ran", app=APP, tag=tag, owner="other")
