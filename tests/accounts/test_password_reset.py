"""Password reset (accounts/passwords.py): the same answer for every address, mail only to a verified one,
throttled per address and per IP, links that work once and expire, and a reset that ends every session and
revokes every token. The concurrency test has a twin: without the row lock one link sets two passwords."""

from __future__ import annotations

import base64
import threading
from datetime import datetime
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from accounts.passwords import password_reset_confirm
from accounts.tokens import password_reset_tokens, user_uid
from mail.models import OutboxMessage
from tests.concurrency import run_concurrently
from tests.conftest import order_payload
from tests.factories import TEST_PASSWORD, ProductFactory, UserFactory

pytestmark = pytest.mark.django_db

RESET_URL = "/api/v1/auth/password-reset/"
CONFIRM_URL = "/api/v1/auth/password-reset/confirm/"
NEW_PASSWORD = "Fresh-sturdy-pass-31"


def _reset(email: str, **extra: Any) -> Any:
    return APIClient().post(RESET_URL, {"email": email}, format="json", **extra)


def _confirm(user: User, token: str, password: str = NEW_PASSWORD) -> Any:
    return APIClient().post(
        CONFIRM_URL, {"uid": user_uid(user), "token": token, "new_password": password}, format="json"
    )


def test_the_answer_is_the_same_for_a_verified_an_unverified_and_an_unknown_address(
    verified_alice: User, unverified_bob: User
) -> None:
    answers = [_reset(email) for email in ("alice@example.com", "bob@example.com", "nobody@example.com")]

    assert {response.status_code for response in answers} == {202}
    assert len({response.content for response in answers}) == 1  # account enumeration: nothing to tell apart
    (row,) = OutboxMessage.objects.all()
    assert (row.event, row.recipient, row.user_id) == ("password_reset", "alice@example.com", verified_alice.pk)


def test_the_web_form_answers_with_the_same_page_for_every_address(verified_alice: User, unverified_bob: User) -> None:
    locations = set()
    for email in ("alice@example.com", "bob@example.com", "nobody@example.com"):
        response = Client().post("/accounts/password-reset/", {"email": email})
        assert response.status_code == 302
        locations.add(response["Location"])
    assert locations == {"/accounts/password-reset/sent/"}
    assert Client().get("/accounts/password-reset/sent/").status_code == 200
    assert OutboxMessage.objects.filter(recipient="alice@example.com").count() == 1
    assert not OutboxMessage.objects.exclude(recipient="alice@example.com").exists()


def test_the_address_matches_whatever_its_case_and_a_repeat_is_the_same_mail(verified_alice: User) -> None:
    assert _reset("ALICE@Example.COM").status_code == 202
    assert _reset("alice@example.com").status_code == 202  # a second click a minute later
    assert OutboxMessage.objects.filter(event="password_reset").count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": "not-an-address"},
        {"email": "a" * 300 + "@example.com"},
        {"email": "a\x00@example.com"},
        {"email": 5},
        {"email": None},
        {"email": ["alice@example.com"]},
    ],
)
def test_bad_input_is_a_400_problem_never_a_500(body: Any, verified_alice: User) -> None:
    response = APIClient().post(RESET_URL, body, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert not OutboxMessage.objects.exists()


def test_a_reset_request_is_throttled_per_address(verified_alice: User, settings: Any) -> None:
    settings.THROTTLE_RATES["password_reset_email"] = "2/hour"
    assert [_reset("alice@example.com").status_code for _ in range(3)] == [202, 202, 429]
    assert _reset("someone-else@example.com").status_code == 202  # the limit is per address
    assert _reset("Alice@Example.com").status_code == 429  # ... whatever its case


def test_a_reset_request_is_throttled_per_ip_on_the_api_and_the_web(settings: Any) -> None:
    settings.THROTTLE_RATES["password_reset_ip"] = "3/hour"
    statuses = [_reset(f"user{n}@example.com").status_code for n in range(3)]
    web = Client().post("/accounts/password-reset/", {"email": "user9@example.com"})
    assert statuses == [202, 202, 202]
    assert web.status_code == 429 and int(web["Retry-After"]) > 0
    api = _reset("user10@example.com")
    assert api.status_code == 429 and api["Content-Type"] == "application/problem+json"


def test_the_link_sets_a_new_password_once(verified_alice: User) -> None:
    token = password_reset_tokens.make_token(verified_alice)

    assert _confirm(verified_alice, token).status_code == 204

    verified_alice.refresh_from_db()
    assert verified_alice.check_password(NEW_PASSWORD)
    again = _confirm(verified_alice, token, password="Yet-another-pass-55")
    assert again.status_code == 400 and again.json()["code"] == "invalid_token"
    verified_alice.refresh_from_db()
    assert verified_alice.check_password(NEW_PASSWORD)


def test_an_expired_link_is_refused(verified_alice: User) -> None:
    generator = password_reset_tokens
    too_old = generator._num_seconds(datetime.now()) - settings.PASSWORD_RESET_TIMEOUT - 60
    token = generator._make_token_with_timestamp(verified_alice, too_old, generator.secret)
    assert _confirm(verified_alice, token).status_code == 400
    verified_alice.refresh_from_db()
    assert verified_alice.check_password(TEST_PASSWORD)


def test_a_weak_new_password_is_refused_and_the_link_still_works(verified_alice: User) -> None:
    token = password_reset_tokens.make_token(verified_alice)
    weak = _confirm(verified_alice, token, password="123")
    assert weak.status_code == 400 and "new_password" in weak.json()["errors"]
    assert _confirm(verified_alice, token).status_code == 204


@pytest.mark.parametrize(
    "uid",
    [base64.urlsafe_b64encode(b"99999999999999999999999").decode(), "!!!", "", "MA", "x" * 64],
)
def test_a_malformed_or_out_of_range_uid_is_a_400_on_the_api_and_the_web(uid: str, verified_alice: User) -> None:
    token = password_reset_tokens.make_token(verified_alice)
    api = APIClient().post(CONFIRM_URL, {"uid": uid, "token": token, "new_password": NEW_PASSWORD}, format="json")
    assert api.status_code == 400
    if uid:
        assert Client().get(f"/accounts/reset/{uid}/{token}/").status_code == 400


def test_a_reset_ends_every_session_and_every_token(verified_alice: User) -> None:
    browser = Client()
    browser.force_login(verified_alice)
    refresh = RefreshToken.for_user(verified_alice)
    app = APIClient()
    app.credentials(HTTP_AUTHORIZATION=f"Bearer {refresh.access_token}")
    assert browser.get("/orders/").status_code == 200 and app.get("/api/v1/orders/").status_code == 200

    assert _confirm(verified_alice, password_reset_tokens.make_token(verified_alice)).status_code == 204

    assert browser.get("/orders/").status_code == 302  # the session's password hash no longer matches
    assert app.get("/api/v1/orders/").status_code == 401  # even the five-minute access token is dead
    refreshed = APIClient().post("/api/v1/auth/token/refresh/", {"refresh": str(refresh)}, format="json")
    assert refreshed.status_code == 401
    assert BlacklistedToken.objects.filter(token__jti=refresh["jti"]).exists()


def test_a_successful_reset_lifts_a_lockout(verified_alice: User) -> None:
    api = APIClient()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        api.post("/api/v1/auth/token/", {"username": "alice", "password": "guess"}, format="json")
    locked = api.post("/api/v1/auth/token/", {"username": "alice", "password": TEST_PASSWORD}, format="json")
    assert locked.status_code == 429

    assert _confirm(verified_alice, password_reset_tokens.make_token(verified_alice)).status_code == 204

    unlocked = api.post("/api/v1/auth/token/", {"username": "alice", "password": NEW_PASSWORD}, format="json")
    assert unlocked.status_code == 200


def test_the_web_link_leads_to_a_form_and_a_used_link_to_a_helpful_400_page(verified_alice: User) -> None:
    browser = Client()
    token = password_reset_tokens.make_token(verified_alice)
    start = browser.get(f"/accounts/reset/{user_uid(verified_alice)}/{token}/")
    assert start.status_code == 302 and token not in start["Location"]  # no token in a Referer from the form page
    mismatch = browser.post(start["Location"], {"new_password": NEW_PASSWORD, "new_password_confirm": "other"})
    assert mismatch.status_code == 400
    done = browser.post(start["Location"], {"new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/accounts/reset/done/"
    used = Client().get(f"/accounts/reset/{user_uid(verified_alice)}/{token}/")
    assert used.status_code == 400 and b"Ask for a new link" in used.content


# --- The rule for unverified accounts -----------------------------------------------------------------------------


def test_an_unverified_account_may_order_but_gets_no_reset_mail(unverified_bob: User) -> None:
    app = APIClient()
    app.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(unverified_bob).access_token}")
    product = ProductFactory.create()
    placed = app.post("/api/v1/orders/", order_payload((product.pk, 1)), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert placed.status_code == 201  # shopping is not held hostage by a mistyped address

    assert _reset("bob@example.com").status_code == 202
    assert not OutboxMessage.objects.filter(event="password_reset").exists()


def test_an_address_that_changed_after_it_was_verified_is_unverified_again(verified_alice: User) -> None:
    User.objects.filter(pk=verified_alice.pk).update(email="alice.new@example.com")  # e.g. an admin edit
    assert not User.objects.get(pk=verified_alice.pk).is_email_verified
    assert _reset("alice.new@example.com").status_code == 202
    assert _reset("alice@example.com").status_code == 202
    assert not OutboxMessage.objects.exists()


# --- Two clicks on one link at the same moment -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_one_link_clicked_twice_at_once_sets_one_password() -> None:
    alice = UserFactory.create(username="alice", email="alice@example.com", verified_email="alice@example.com")
    token = password_reset_tokens.make_token(alice)
    passwords = ["First-sturdy-pass-11", "Second-sturdy-pass-22"]

    outcomes = run_concurrently(
        lambda index: password_reset_confirm(
            user=User.objects.get(pk=alice.pk), token=token, new_password=passwords[index]
        ),
        2,
    )

    assert sum(outcome.error is None for outcome in outcomes) == 1
    refused = [outcome.error for outcome in outcomes if outcome.error is not None]
    assert type(refused[0]).__name__ == "InvalidResetLink"


def naive_reset_confirm(*, user_id: int, token: str, new_password: str, both_checked: threading.Barrier) -> None:
    """ANTI-PATTERN, on purpose (the twin below): check the token, then set the password, with no lock."""
    user = User.objects.get(pk=user_id)
    if not password_reset_tokens.check_token(user, token):
        raise ValueError("invalid link")
    both_checked.wait(timeout=30)
    user.set_password(new_password)
    user.save(update_fields=["password"])


@pytest.mark.django_db(transaction=True)
def test_twin_without_the_lock_one_link_sets_two_passwords() -> None:
    alice = UserFactory.create(username="alice", email="alice@example.com", verified_email="alice@example.com")
    token = password_reset_tokens.make_token(alice)
    both_checked = threading.Barrier(2)

    outcomes = run_concurrently(
        lambda index: naive_reset_confirm(
            user_id=alice.pk, token=token, new_password=f"Racing-sturdy-pass-{index}", both_checked=both_checked
        ),
        2,
    )

    assert all(outcome.error is None for outcome in outcomes)  # the "single-use" link was used twice
