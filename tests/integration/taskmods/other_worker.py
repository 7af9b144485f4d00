"""Run a worker for other_app.APP (not the default app) with its execute_tasks().

Usage: python other_worker.py REDIS_URL [queue ...]
"""

import logging
import sys

import other_app

logging.basicConfig(level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
other_app.APP.set_redis_url(sys.argv[1])
sys.exit(other_app.APP.execute_tasks(sys.argv[2:] or None, threads_per_process=1))
