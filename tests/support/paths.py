"""Where the test suites keep the modules that worker processes import.

A worker imports its tasks by bare module name (``--module=basic``) and the
test process imports the same modules by the same names, so both agree on
task names ("basic.record"). These folders are therefore on the workers'
PYTHONPATH (support.worker) and on the test process's sys.path (the root
conftest, the one place that changes it).
"""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent

INTEGRATION_TASKMODS = TESTS / "integration" / "taskmods"
OPSMODS = TESTS / "integration" / "opsmods"
ASYNCMODS = TESTS / "integration" / "asyncmods"
PERIODICMODS = TESTS / "integration" / "periodicmods"
LEGACYMODS = TESTS / "integration" / "legacymods"
FAULT_TASKMODS = TESTS / "fault" / "taskmods"
CLUSTER_TASKMODS = TESTS / "cluster" / "taskmods"
SECURITY_TASKMODS = TESTS / "security" / "taskmods"
WEB = TESTS / "web"  # webtasks.py sits next to the dashboard tests

MODULE_DIRS: tuple[Path, ...] = (
    INTEGRATION_TASKMODS,
    OPSMODS,
    ASYNCMODS,
    PERIODICMODS,
    LEGACYMODS,
    FAULT_TASKMODS,
    CLUSTER_TASKMODS,
    SECURITY_TASKMODS,
    WEB,
)
