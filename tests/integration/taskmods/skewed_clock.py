"""basic's tasks, in a worker whose wall clock is an hour fast.

Due times, leases and schedules must follow Redis TIME, so nothing may run
early in this worker.
"""

import time

_real_time = time.time
time.time = lambda: _real_time() + 3600.0

from basic import *  # noqa: E402,F403
