"""The one production environment the tests start Django with: everything production insists on, set.

Production refuses an unsafe configuration at start-up (config/settings.py, mail/configuration.py). A test of
one refusal, or of something else in production mode, starts from this and changes or removes one variable, so
a new requirement is added here once instead of in every test that runs production.
"""

from __future__ import annotations

import secrets

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
