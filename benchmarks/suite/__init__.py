"""The peer benchmark behind ``benchmarks/run.py``, one concern per module.

Standard library only (the harness runs under any ``python3``; each system
runs in its own venv through its adapter):

- ``common``: paths, the systems measured, the metrics, the log line;
- ``cli``: the command line;
- ``venvs``, ``server``, ``adapters``: venvs, the redis-server, adapter runs;
- ``ceilings``, ``backlog``, ``profile_phase``: the measurement families
  beyond the per-peer adapter runs;
- ``peers_phase``: the repeats of every peer's adapter, and their aggregation;
- ``report*`` modules: BENCHMARKS.md, one section per module;
- ``main``: what ``run.py`` runs.
"""
