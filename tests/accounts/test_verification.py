"""Verified addresses (accounts/verification.py): a confirmation mail at sign-up and on every change, confirmed
only by the account's own session, single use, expiring; a new address takes effect only once confirmed."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from accounts.services import RegistrationRefused, user_register
from accounts.tokens import email_verification_token
from mail.models import OutboxMessage
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db

VERIFY_URL = "/api/v1/auth/email/verify/"


def _app(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def test_sign_up_promises_the_confirmation_mail_in_its_own_transaction(db: None, mail_tasks: list[int]) -> None:
    user = user_register(username="newcomer", email="newcomer@example.com", password="Sturdy-pass-42")
    (row,) = OutboxMessage.objects.all()
    assert (row.event, row.recipient, row.user_id) == ("verify_email", "newcomer@example.com", user.pk)
    assert not user.is_email_verified


def test_a_refused_sign_up_promises_nothing(alice: User) -> None:
    with pytest.raises(RegistrationRefused):
        user_register(username="alice", email="other@example.com", password="Sturdy-pass-42")
    assert not OutboxMessage.objects.exists()


def test_the_web_sign_up_says_where_the_link_went(db: None) -> None:
    browser = Client()
    response = browser.post(
        "/accounts/signup/",
        {
            "username": "newcomer",
            "email": "newcomer@example.com",
            "password": "Sturdy-pass-42",
            "password_confirm": "Sturdy-pass-42",
        },
        follow=True,
    )
    assert response.status_code == 200 and b"newcomer@example.com" in response.content
    assert OutboxMessage.objects.filter(event="verify_email", recipient="newcomer@example.com").count() == 1


def test_the_account_confirms_its_address_once_through_the_api(alice: User) -> None:
    token = email_verification_token(user=alice, email=alice.email)
    client = _app(alice)
    assert client.get("/api/v1/auth/me/").json()["email_verified"] is False

    confirmed = client.post(VERIFY_URL, {"token": token}, format="json")

    assert confirmed.status_code == 200 and confirmed.json()["email_verified"] is True
    assert User.objects.get(pk=alice.pk).is_email_verified
    again = client.post(VERIFY_URL, {"token": token}, format="json")
    assert again.status_code == 400 and again.json()["code"] == "invalid_token"


def test_holding_the_inbox_is_not_enough_another_account_cannot_use_the_link(alice: User, bob: User) -> None:
    token = email_verification_token(user=alice, email=alice.email)
    response = _app(bob).post(VERIFY_URL, {"token": token}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "wrong_account"
    assert APIClient().post(VERIFY_URL, {"token": token}, format="json").status_code == 401
    assert not User.objects.get(pk=alice.pk).is_email_verified


def test_an_expired_or_forged_link_is_refused(alice: User, settings: Any) -> None:
    token = email_verification_token(user=alice, email=alice.email)
    client = _app(alice)
    assert client.post(VERIFY_URL, {"token": token[:-3] + "abc"}, format="json").status_code == 400
    settings.EMAIL_VERIFY_TIMEOUT_S = -1  # every link is older than its lifetime
    assert client.post(VERIFY_URL, {"token": token}, format="json").status_code == 400
    assert not User.objects.get(pk=alice.pk).is_email_verified


@pytest.mark.parametrize("token", ["", "x" * 513, "a\x00b", "eyJ1Ijo1fQ:abc:def"])
def test_junk_tokens_are_a_400_problem(alice: User, token: str) -> None:
    response = _app(alice).post(VERIFY_URL, {"token": token}, format="json")
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"


def test_a_new_address_takes_effect_only_when_it_is_confirmed(alice: User, mail_tasks: list[int]) -> None:
    User.objects.filter(pk=alice.pk).update(verified_email=alice.email)
    client = _app(alice)
    wrong = client.post("/api/v1/auth/email/", {"email": "alice.new@example.com", "password": "guess"}, format="json")
    assert wrong.status_code == 400 and not OutboxMessage.objects.exists()

    asked = client.post(
        "/api/v1/auth/email/", {"email": "alice.new@example.com", "password": TEST_PASSWORD}, format="json"
    )

    assert asked.status_code == 202
    (row,) = OutboxMessage.objects.all()
    assert (row.event, row.recipient) == ("verify_email", "alice.new@example.com")
    current = User.objects.get(pk=alice.pk)
    assert (current.email, current.is_email_verified) == ("alice@example.com", True)  # unchanged until confirmed
    token = email_verification_token(user=current, email="alice.new@example.com")
    assert client.post(VERIFY_URL, {"token": token}, format="json").status_code == 200
    moved = User.objects.get(pk=alice.pk)
    assert (moved.email, moved.is_email_verified) == ("alice.new@example.com", True)


def test_an_older_link_cannot_undo_a_newer_change(alice: User) -> None:
    first = email_verification_token(user=alice, email="first@example.com")
    second = email_verification_token(user=alice, email="second@example.com")
    client = _app(alice)
    assert client.post(VERIFY_URL, {"token": second}, format="json").status_code == 200
    assert client.post(VERIFY_URL, {"token": first}, format="json").status_code == 400
    assert User.objects.get(pk=alice.pk).email == "second@example.com"


def test_the_web_link_shows_a_button_and_only_the_post_confirms(alice: User) -> None:
    link = f"/accounts/verify/{email_verification_token(user=alice, email=alice.email)}/"
    signed_out = Client().get(link)
    assert signed_out.status_code == 302 and signed_out["Location"].startswith("/accounts/login/?next=")
    browser = Client()
    browser.force_login(alice)
    page = browser.get(link)  # what a mail scanner does
    assert page.status_code == 200 and b"Confirm this address" in page.content
    assert not User.objects.get(pk=alice.pk).is_email_verified
    assert browser.post(link).status_code == 302
    assert User.objects.get(pk=alice.pk).is_email_verified
    assert browser.get(link).status_code == 400  # used


def test_resend_sends_again_until_verified(alice: User, settings: Any) -> None:
    settings.ACCOUNT_MAIL_WINDOW_S = 1  # every request in its own window
    client = _app(alice)
    assert client.post("/api/v1/auth/email/verify/resend/", format="json").status_code == 202
    assert OutboxMessage.objects.filter(event="verify_email").count() >= 1
    User.objects.filter(pk=alice.pk).update(verified_email=alice.email)
    before = OutboxMessage.objects.count()
    response = client.post("/api/v1/auth/email/verify/resend/", format="json")
    assert response.status_code == 202 and "verified already" in response.json()["detail"]
    assert OutboxMessage.objects.count() == before


def test_the_account_page_shows_the_state_and_offers_the_resend(alice: User) -> None:
    browser = Client()
    browser.force_login(alice)
    page = browser.get("/accounts/account/")
    assert page.status_code == 200 and b"not verified yet" in page.content
    assert browser.post("/accounts/email/resend/").status_code == 302
    with transaction.atomic():
        assert OutboxMessage.objects.filter(event="verify_email", user=alice).count() == 1
