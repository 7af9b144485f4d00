"""The measurement protocol shared by every peer adapter, one concern per
module; adapters and task modules use it through ``benchlib`` (the names
they import from it are re-exported there).

- ``keys``: Redis keys and environment variables of the protocol;
- ``tasks``: the task bodies, run inside the workers;
- ``peer``: what an adapter implements;
- ``counters``, ``workers``: counting executions, running worker processes;
- ``session``: one adapter run's state, the drain and latency measurements;
- ``standard``, ``backlog``, ``profile_mode``: the three ``--mode``s;
- ``cli``: the adapter's command line and its one JSON line.
"""
