"""Settings for a gunicorn started by a test: the real settings plus the test-only routes of urls.py."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "tests.capacity.urls"
