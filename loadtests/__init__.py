"""The load suite: locust traffic, the audit after it, reports, stress and bench (see README.md here)."""
