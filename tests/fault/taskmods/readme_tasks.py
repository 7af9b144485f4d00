"""The seed README's two vis_timeout examples, as written.

Only the imports they need are added, and ``random`` is seeded from
``$README_SEED`` so that a test knows which attempts fail: the draws happen
in the order the attempts run. Everything below the marker is the README's
code, unchanged.
"""

import os
import random
import time

import rpqueue
from rpqueue import task

random.seed(int(os.environ.get("README_SEED", "0")))

# ---- verbatim from the README: "Automatic retries with vis_timeout" ----


@task(attempts=20, vis_timeout=5, use_dead=False)
def usually_eventually_succeed(**kwargs):
    # (4/5)**20  is ~ 0.0115, so call chain fails about 1% of the time
    if not random.randrange(5):
        return "done!"

    time.sleep(6) # fail silently

# ---- verbatim from the README: "Deadletter task queue" ----


@rpqueue.task(attempts=5, vis_timeout=5, use_dead=True)
def fails_to_dead(**kwargs):
    # (4/5)**5  is 0.32768, so call chain fails about 33% of the time
    if not random.randrange(5):
        return "done!"

    time.sleep(6) # fail silently
