"""The two account tokens, both single-use and expiring, neither stored anywhere.

Password reset: Django's `default_token_generator`. The token is an HMAC (SECRET_KEY) over the user's id, password
hash, last login, email and a timestamp: it expires after PASSWORD_RESET_TIMEOUT, and it dies the moment it is
used, because using it changes the password hash it was made from.

Address verification: a signed value (django.core.signing, SECRET_KEY) carrying the account, the address to
confirm and a fingerprint of the account's current address state. It expires after EMAIL_VERIFY_TIMEOUT_S and
dies when used, because confirming changes the state the fingerprint was taken from (as does any other change
of the address in between: an older link cannot undo a newer change).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core import signing
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from accounts.models import User

password_reset_tokens = default_token_generator
_VERIFY_SALT = "accounts.email-verification"


def user_uid(user: User) -> str:
    return urlsafe_base64_encode(force_bytes(user.pk))


def user_from_uid(uid: str) -> User | None:
    """The active user a reset link's uid names, or None for anything malformed or unknown."""
    try:
        pk = int(force_str(urlsafe_base64_decode(uid)))
    except (TypeError, ValueError, OverflowError, UnicodeDecodeError):
        return None
    # A 500 from a stranger: a decoded number outside bigint would make PostgreSQL refuse the query.
    if not 1 <= pk <= 2**63 - 1:
        return None
    return User.objects.filter(pk=pk, is_active=True).first()


def _address_state(user: User) -> str:
    state = f"{user.pk}:{user.email.lower()}:{user.verified_email.lower()}"
    return hashlib.sha256(state.encode()).hexdigest()[:16]


def email_verification_token(*, user: User, email: str) -> str:
    return signing.dumps({"u": user.pk, "e": email, "s": _address_state(user)}, salt=_VERIFY_SALT, compress=True)


@dataclass(frozen=True)
class VerificationClaim:
    user_id: int
    email: str
    state: str

    def is_current_for(self, user: User) -> bool:
        """Single use: true only while the account's address is as it was when the link was made."""
        return user.pk == self.user_id and self.state == _address_state(user)


def email_verification_claim(token: str) -> VerificationClaim | None:
    """What a verification token says, or None when it is forged, malformed or older than its lifetime."""
    try:
        payload = signing.loads(token, salt=_VERIFY_SALT, max_age=settings.EMAIL_VERIFY_TIMEOUT_S)
    except signing.BadSignature:  # also SignatureExpired
        return None
    if not isinstance(payload, dict):
        return None
    user_id, email, state = payload.get("u"), payload.get("e"), payload.get("s")
    if (
        not isinstance(user_id, int)
        or isinstance(user_id, bool)
        or not isinstance(email, str)
        or not isinstance(state, str)
    ):
        return None
    return VerificationClaim(user_id=user_id, email=email, state=state)
