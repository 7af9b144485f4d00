"""Root of the test suite: shared fixtures and the one sys.path change.

The fixtures live in tests/support (a package; pytest puts tests/ on
sys.path because this folder is not a package itself) and are registered
here as plugins, so every suite gets the same redis_* fixtures and worker
harness without copying them.
"""

import sys

from support.paths import MODULE_DIRS

# The test process imports task modules by the bare names workers import
# them by (``--module=basic``), so both agree on task names. This is the one
# place that makes those folders importable here; worker processes get them
# through PYTHONPATH (support.worker.worker_env). Test files must not touch
# sys.path.
for _folder in MODULE_DIRS:
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

pytest_plugins = ["support.fixtures"]
