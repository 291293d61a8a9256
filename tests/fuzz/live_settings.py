"""Settings for a gunicorn the fuzz tests start: the shop's own, plus the failing routes of urls.py."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "tests.fuzz.urls"
