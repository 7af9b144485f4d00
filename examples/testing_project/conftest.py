# The rpqueue fixtures: rpqueue_server, rpqueue_app, rpqueue_worker, rpqueue_eager.
pytest_plugins = ["rpqueue.testing.pytest_plugin"]
