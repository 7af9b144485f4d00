"""Shared test infrastructure: worker processes (worker.py), Redis server
fixtures (fixtures.py, a pytest plugin loaded by tests/conftest.py) and the
task-module folders (paths.py)."""
