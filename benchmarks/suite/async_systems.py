"""What benchmarks/async_bench.py measures and how its roles talk to each
other: Redis keys, environment variables, the systems and their venvs.
Standard library only: the orchestrator, the producers and the workers
(each system's venv) all import it."""

from __future__ import annotations

from typing import Any

MARK_START, MARK_END = "<!-- async:start -->", "<!-- async:end -->"

K_DONE = "abench:done"
K_FIRST = "abench:t_first"
K_LAST = "abench:t_last"
K_FINISHED = "abench:finished"

ENV_SYSTEM = "ASYNC_BENCH_SYSTEM"
ENV_URL = "ASYNC_BENCH_URL"
ENV_TOTAL = "ASYNC_BENCH_TOTAL"
ENV_CONCURRENCY = "ASYNC_BENCH_CONCURRENCY"
ENV_SLEEP = "ASYNC_BENCH_SLEEP"
ENV_POLL = "ASYNC_BENCH_POLL_DELAY"

RPQUEUE_QUEUE = "abench"
TASK_NAME = "async_bench.asleep"

# SAQ's pins (pip freeze of saq[redis]==0.26.4 + hiredis; saq 0.26.4 imports
# typing_extensions without declaring it), kept here so the
# script is self-contained; written to .work/async/ for run.py's ensure_venv.
SAQ_REQUIREMENTS = """\
# SAQ, for benchmarks/async_bench.py (venv benchmarks/.venvs/saq)
saq==0.26.4
croniter==7.0.0
hiredis==3.5.0
python-dateutil==4.0.0
redis==7.4.1
typing_extensions==4.16.0
tzdata==2026.6
"""

# id -> venv, requirements, label
SYSTEMS: dict[str, dict[str, Any]] = {
    "rpqueue": {"venv": "rpqueue_new", "req": "peers/rpqueue_new/requirements.txt",
                "editable": True, "label": "rpqueue (this repo), --async-concurrency {c}"},
    "arq": {"venv": "arq", "req": "peers/arq/requirements.txt",
            "label": "arq, max_jobs={c} (default poll_delay 0.5 s)"},
    "arq_fastpoll": {"venv": "arq", "req": "peers/arq/requirements.txt",
                     "label": "arq, max_jobs={c}, poll_delay=0.01"},
    "saq": {"venv": "saq", "req": None, "label": "SAQ, concurrency={c}"},
}

