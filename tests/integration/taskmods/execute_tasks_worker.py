"""A worker started with rpqueue.execute_tasks(...) and its arguments.

Usage: python execute_tasks_worker.py REDIS_URL THREADS PROCESSES [queue ...]
"""

import logging
import sys

import rpqueue

logging.basicConfig(level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
url, threads, processes, queues = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
rpqueue.set_redis_url(url)
sys.exit(rpqueue.execute_tasks(queues=queues or None, threads_per_process=threads,
                               processes=processes, wait_per_thread=5, module="basic"))
