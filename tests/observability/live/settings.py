"""Settings for the app processes the observability tests start (gunicorn, Celery worker).

Exactly the shop's settings, plus a few routes and one task that fail on purpose (urls.py, tasks.py).
"""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "tests.observability.live.urls"
CELERY_IMPORTS = ["tests.observability.live.tasks"]
