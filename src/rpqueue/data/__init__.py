"""Data queues: JSON items, not tasks, read 1..1000 at a time.

A read with ``vis_timeout`` 0 removes what it returns (0/1); > 0 leases it
(1+): the item is hidden until the lease ends, then readable again, up to
``attempts`` leased reads, after which it is dropped or dead-lettered; < 0
peeks. ``get_data_with_receipts`` adds a lease receipt per item so that
``refresh_data``/``done_data`` act only for the holder of the latest lease.

Three types, one per thing the original ``Data`` flags named:

- ``DataQueue`` (``live.py``): a live data queue.
- ``DataDeadLetters`` (``dead.py``): dead data items, of one queue or all.
- ``TaskDeadLetters`` (``dead.py``): dead-lettered tasks, of one queue or all.

``Data(...)`` (``base.py``) takes the original arguments and builds the
right one; each is a ``Data``.

Storage (one hash tag per queue, all under ``Keys.data(queue).base``): the
scripts ``scripts/data_*.lua`` list each key; every deadline is Redis time.
The calls are built in ``storage/data_calls.py``.
"""

from __future__ import annotations

from .base import MAX_ITEMS, Data, Leased
from .dead import DataDeadLetters, TaskDeadLetters
from .live import DataQueue
from .records import UPKEEP_BATCH

__all__ = ["MAX_ITEMS", "UPKEEP_BATCH", "Data", "DataDeadLetters", "DataQueue", "Leased",
           "TaskDeadLetters"]
