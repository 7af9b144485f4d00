"""A small Django project using rpqueue as its Tasks backend.

The test sets RPQUEUE_DJANGO_URL to its redis-server (and passes it on to
the worker it starts with ``manage.py rpqueue_worker``).
"""

import os

SECRET_KEY = "rpqueue-test-project"  # a test project: nothing to keep secret
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["rpqueue.contrib.django", "shop"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB", ":memory:"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
TASKS = {
    "default": {
        "BACKEND": "rpqueue.contrib.django.RPQueueBackend",
        "QUEUES": ["default", "emails"],
        "OPTIONS": {
            "URL": os.environ.get("RPQUEUE_DJANGO_URL", "redis://localhost:6379/0"),
            "PREFIX": "djtest:",
            "RESULT_TTL": 600,
        },
    }
}
