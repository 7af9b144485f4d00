#!/usr/bin/env python3
"""Benchmark rpqueue against its peers, side by side, on one redis-server.

    python3 benchmarks/run.py                 # default run (20,000 tasks, 3 repeats)
    python3 benchmarks/run.py --full          # + backlog scaling (--backlog) + profile (--profile)
    python3 benchmarks/run.py --quick         # quick run (2,000 tasks, 1 repeat)
    python3 benchmarks/run.py --smoke         # harness check: rpqueue only, 200 tasks, not BENCHMARKS.md
    python3 benchmarks/run.py --peers rpqueue_orig,huey --repeat 1
    python3 benchmarks/run.py --render-from benchmarks/results/latest.json  # re-render only

Standard library only.  Each peer runs in its own venv under
benchmarks/.venvs/<venv> (created here on first use from
benchmarks/peers/<peer>/requirements.txt) through an adapter script that
prints one JSON line; see benchmarks/README.md for the method.

Writes BENCHMARKS.md (repo root), benchmarks/results/latest.json and
benchmarks/results/drain.png (matplotlib, in benchmarks/.venvs/harness).
BENCHMARKS.md is rewritten except for the sections other scripts keep in it
between <!-- NAME:start --> and <!-- NAME:end --> (async_bench.py's), which
are carried over verbatim.

The harness itself is the package benchmarks/suite/ (one module per
measurement family and per report section); this file is its entry point.
"""

from __future__ import annotations

import os
import sys

# the harness package next to this file (benchmarks/suite/), whatever the cwd
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from suite.main import main

if __name__ == "__main__":
    sys.exit(main(description=__doc__.split("\n\n")[0]))
