"""Password change (accounts/passwords.py): the current password is required, and a change ends every other
session and token of the account, while the one that made the change goes on."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken
from zeal import zeal_ignore

from accounts.models import User
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db

CHANGE_URL = "/api/v1/auth/password/"
NEW_PASSWORD = "Changed-sturdy-pass-64"


def _app(user: User) -> tuple[APIClient, RefreshToken]:
    refresh = RefreshToken.for_user(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {refresh.access_token}")
    return client, refresh


def test_the_api_refuses_a_wrong_current_password_and_changes_nothing(alice: User) -> None:
    client, _ = _app(alice)
    response = client.post(CHANGE_URL, {"current_password": "guess", "new_password": NEW_PASSWORD}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "wrong_password" and "current_password" in response.json()["errors"]
    alice.refresh_from_db()
    assert alice.check_password(TEST_PASSWORD)


def test_the_api_refuses_a_weak_new_password(alice: User) -> None:
    client, _ = _app(alice)
    response = client.post(CHANGE_URL, {"current_password": TEST_PASSWORD, "new_password": "alice"}, format="json")
    assert response.status_code == 400 and "new_password" in response.json()["errors"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"current_password": TEST_PASSWORD},
        {"current_password": 7, "new_password": []},
        {"current_password": "x" * 129, "new_password": NEW_PASSWORD},
        {"current_password": "a\x00", "new_password": "b"},
    ],
)
def test_bad_input_is_a_400_problem(alice: User, body: dict[str, Any]) -> None:
    client, _ = _app(alice)
    response = client.post(CHANGE_URL, body, format="json")
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"


def test_a_change_through_the_api_ends_every_other_token_and_session_and_hands_the_caller_new_ones(
    alice: User,
) -> None:
    client, refresh = _app(alice)
    other_device, other_refresh = _app(alice)
    browser = Client()
    browser.force_login(alice)

    response = client.post(CHANGE_URL, {"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD}, format="json")

    assert response.status_code == 200
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert fresh.get("/api/v1/orders/").status_code == 200
    assert other_device.get("/api/v1/orders/").status_code == 401
    assert client.get("/api/v1/orders/").status_code == 401  # the old access token too
    # simplejwt's refresh looks the user up twice (a library's harmless double get(), as in the matrix).
    with zeal_ignore():
        for old in (refresh, other_refresh):
            refreshed = APIClient().post("/api/v1/auth/token/refresh/", {"refresh": str(old)}, format="json")
            assert refreshed.status_code == 401
    assert browser.get("/orders/").status_code == 302
    with zeal_ignore():
        new_refresh = APIClient().post(
            "/api/v1/auth/token/refresh/", {"refresh": response.json()["refresh"]}, format="json"
        )
    assert new_refresh.status_code == 200


def test_a_change_on_the_web_keeps_this_session_and_ends_the_others(alice: User) -> None:
    here, elsewhere = Client(), Client()
    here.force_login(alice)
    elsewhere.force_login(alice)

    response = here.post(
        "/accounts/password/",
        {"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
    )

    assert response.status_code == 302 and response["Location"] == "/accounts/account/"
    assert here.get("/accounts/account/").status_code == 200
    assert elsewhere.get("/accounts/account/").status_code == 302  # sent to log in
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)


def test_the_web_form_explains_a_wrong_current_password(alice: User) -> None:
    browser = Client()
    browser.force_login(alice)
    response = browser.post(
        "/accounts/password/",
        {"current_password": "guess", "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD},
    )
    assert response.status_code == 400 and b"not your current password" in response.content
    alice.refresh_from_db()
    assert alice.check_password(TEST_PASSWORD)


def test_signed_out_callers_are_refused(db: None) -> None:
    assert APIClient().post(CHANGE_URL, {}, format="json").status_code == 401
    assert Client().get("/accounts/password/")["Location"].startswith("/accounts/login/")
