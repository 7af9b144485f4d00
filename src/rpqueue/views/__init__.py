"""The read model: what the queues hold, the schedules, dead letters and workers.

One implementation of each listing, taking a ``Context``, used by the
Python API (``manage.py``, ``admin.py``), the command line, the dashboard
(``web/model.py``) and the Prometheus collector (``metrics.py``). The Redis
reads behind them live in ``storage/reads.py``.
"""
