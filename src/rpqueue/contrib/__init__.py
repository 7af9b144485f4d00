"""Integrations with other frameworks, each behind an optional extra:
``rpqueue.contrib.otel`` (``rpqueue[otel]``: OpenTelemetry tracing) and
``rpqueue.contrib.django`` (``rpqueue[django]``: a backend for Django's Tasks)."""
