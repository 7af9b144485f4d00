"""Redis keys and environment variables of the protocol (the producer and
the workers must agree on them)."""

from __future__ import annotations

import struct

K_DONE = "bench:done"
K_FIRST = "bench:t_first"
K_LAST = "bench:t_last"
K_FINISHED = "bench:finished"
K_LAT = "bench:lat"

# backlog fills are sent in chunks of this many tasks
FILL_CHUNK = 10000

ENV_URL = "BENCH_REDIS_URL"
ENV_TOTAL = "BENCH_TOTAL"
# path prefix of the local counter's files; unset: the task INCRs bench:done
ENV_COUNTER = "BENCH_COUNTER"

COUNTERS = ("local", "redis")
_TIME = struct.Struct("d")
