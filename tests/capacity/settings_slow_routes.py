"""Settings for a gunicorn started by a test: the real settings plus the test-only routes of urls.py."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "tests.capacity.urls"

# The test-only slow routes hold the request thread on purpose; load shedding must not refuse them.
SHEDDING_EXEMPT_PATHS = [*SHEDDING_EXEMPT_PATHS, "/api/_test/", "/_test/"]  # noqa: F405
