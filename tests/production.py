"""The one production environment the tests start Django with: everything production insists on, set.

Production refuses an unsafe configuration at start-up (config/settings.py, mail/configuration.py). A test of
one refusal, or of something else in production mode, starts from this and changes or removes one variable, so
a new requirement is added here once instead of in every test that runs production.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What production needs beyond the mail relay (a real SMTP host, the sender and the shop's https address).
PRODUCTION_WITHOUT_MAIL = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": secrets.token_urlsafe(60),
    "ALLOWED_HOSTS": "shop.example.com",
    "PAYMENT_PROVIDER_URL": "https://api.payments.example",
    "THROTTLE_TRUSTED_PROXIES": "1",
}
PRODUCTION_MAIL = {
    "EMAIL_HOST": "smtp.relay.example",
    "EMAIL_FROM": "Hardened Shop <orders@shop.example.com>",
    "SHOP_BASE_URL": "https://shop.example.com",
}


def production_environment(**overrides: str) -> dict[str, str]:
    """A production environment that starts; pass a variable to change it."""
    return {**PRODUCTION_WITHOUT_MAIL, **PRODUCTION_MAIL, **overrides}


def django_check(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`manage.py check` with exactly `environment` (and PATH): nothing of this shell's leaks into the start-up
    under test, so a refusal production makes is the one the environment causes."""
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
