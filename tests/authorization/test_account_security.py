"""Account security: short-lived JWTs with rotation and a blacklist, new and dead sessions, lockout after
repeated failures (django-axes) on the web and the API alike, CSRF on every web form, password validators."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts.models import User
from tests.authorization.policy import POLICY
from tests.authorization.routes import project_routes
from tests.authorization.scene import Scene, build_scene
from tests.authorization.snapshot import changed_tables, database_snapshot
from tests.factories import TEST_PASSWORD

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"
REFRESH_URL = "/api/v1/auth/token/refresh/"
LOGOUT_URL = "/api/v1/auth/logout/"
LOGIN_URL = "/accounts/login/"


def _fail_api_login(client: APIClient, username: str, times: int) -> None:
    for _ in range(times):
        response = client.post(TOKEN_URL, {"username": username, "password": "wrong-password"}, format="json")
        assert response.status_code == 401, response.content


# --- JWT: short-lived access, rotating refresh, blacklist on logout ----------------------------------------------


def test_access_tokens_live_minutes_and_refresh_tokens_rotate_and_are_blacklisted() -> None:
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]
    assert isinstance(lifetime, timedelta) and lifetime <= timedelta(minutes=15)
    assert settings.SIMPLE_JWT["ROTATE_REFRESH_TOKENS"] is True
    assert settings.SIMPLE_JWT["BLACKLIST_AFTER_ROTATION"] is True


# simplejwt's refresh rotation reads the user twice (validate, then outstand): a constant 2, not an N+1.
LIBRARY_DOUBLE_READ = override_settings(ZEAL_RAISE=False)


@LIBRARY_DOUBLE_READ
def test_refresh_rotates_and_the_old_refresh_token_is_dead(alice: User) -> None:
    client = APIClient()
    tokens = client.post(TOKEN_URL, {"username": "alice", "password": TEST_PASSWORD}, format="json").json()
    access = AccessToken(tokens["access"])
    assert access["exp"] - access["iat"] <= 15 * 60

    rotated = client.post(REFRESH_URL, {"refresh": tokens["refresh"]}, format="json")
    assert rotated.status_code == 200
    assert rotated.json()["refresh"] != tokens["refresh"]
    # Stolen token: the refresh token that was just used cannot be used again.
    replay = client.post(REFRESH_URL, {"refresh": tokens["refresh"]}, format="json")
    assert replay.status_code == 401
    assert replay["Content-Type"] == "application/problem+json"


@LIBRARY_DOUBLE_READ
def test_logout_blacklists_the_refresh_token(alice: User) -> None:
    refresh = RefreshToken.for_user(alice)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {refresh.access_token}")
    assert client.post(LOGOUT_URL, {"refresh": str(refresh)}, format="json").status_code == 204
    assert APIClient().post(REFRESH_URL, {"refresh": str(refresh)}, format="json").status_code == 401


@LIBRARY_DOUBLE_READ
def test_nobody_can_log_out_someone_else(alice: User, bob: User) -> None:
    alices_refresh = RefreshToken.for_user(alice)
    bobs_client = APIClient()
    bobs_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(bob).access_token}")
    refused = bobs_client.post(LOGOUT_URL, {"refresh": str(alices_refresh)}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (403, "not_your_token")
    assert APIClient().post(REFRESH_URL, {"refresh": str(alices_refresh)}, format="json").status_code == 200


def test_an_expired_access_token_is_refused(alice: User) -> None:
    expired = AccessToken.for_user(alice)
    expired.set_exp(lifetime=-timedelta(seconds=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {expired}")
    response = client.get("/api/v1/orders/")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


# --- Sessions: a new one at login, a dead one at logout ---------------------------------------------------------


def test_login_issues_a_new_session_and_logout_kills_it(alice: User) -> None:
    client = Client()
    client.get(LOGIN_URL)
    client.session.save()
    before_login = client.cookies["sessionid"].value if "sessionid" in client.cookies else None
    response = client.post(LOGIN_URL, {"username": "alice", "password": TEST_PASSWORD})
    assert response.status_code == 302
    signed_in = client.cookies["sessionid"].value
    # Session fixation: a session id planted before login is not the one that gets the account.
    assert signed_in != before_login
    assert client.get("/orders/").status_code == 200

    assert client.post("/accounts/logout/").status_code == 302
    # The old cookie, replayed by whoever copied it, is dead.
    replay = Client()
    replay.cookies["sessionid"] = signed_in
    response = replay.get("/orders/")
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN_URL)


# --- Lockout (django-axes): web and API count together -------------------------------------------------------------


def test_api_token_endpoint_locks_out_with_429_problem_and_retry_after(alice: User) -> None:
    client = APIClient()
    _fail_api_login(client, "alice", settings.AXES_FAILURE_LIMIT - 1)
    assert AccessAttempt.objects.filter(username="alice").get().failures_since_start == settings.AXES_FAILURE_LIMIT - 1

    last_try = client.post(TOKEN_URL, {"username": "alice", "password": "wrong-password"}, format="json")
    assert last_try.status_code == 429
    # Locked out: even the right password is refused now.
    response = client.post(TOKEN_URL, {"username": "alice", "password": TEST_PASSWORD}, format="json")
    assert response.status_code == 429
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "too_many_failed_logins"
    assert int(response["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())
    assert "access" not in response.json()


def test_web_login_locks_out_with_a_clear_page(alice: User) -> None:
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post(LOGIN_URL, {"username": "alice", "password": "wrong-password"}).status_code == 400
    client.post(LOGIN_URL, {"username": "alice", "password": "wrong-password"})
    response = client.post(LOGIN_URL, {"username": "alice", "password": TEST_PASSWORD})
    assert response.status_code == 429
    assert response["Retry-After"]
    page = response.content.decode()
    assert "Log-in paused" in page and "Try again in 15 minutes" in page
    assert "_auth_user_id" not in client.session


def test_failures_on_the_web_and_the_api_add_up(alice: User) -> None:
    web = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        web.post(LOGIN_URL, {"username": "alice", "password": "wrong-password"})
    api = APIClient()
    api.post(TOKEN_URL, {"username": "alice", "password": "wrong-password"}, format="json")
    assert api.post(TOKEN_URL, {"username": "alice", "password": TEST_PASSWORD}, format="json").status_code == 429


def test_lockout_is_per_username_so_other_accounts_still_log_in(alice: User, bob: User) -> None:
    client = APIClient()
    _fail_api_login(client, "alice", settings.AXES_FAILURE_LIMIT - 1)
    client.post(TOKEN_URL, {"username": "alice", "password": "wrong-password"}, format="json")
    assert client.post(TOKEN_URL, {"username": "bob", "password": TEST_PASSWORD}, format="json").status_code == 200


def test_a_success_before_the_limit_resets_the_count(alice: User) -> None:
    client = APIClient()
    _fail_api_login(client, "alice", settings.AXES_FAILURE_LIMIT - 1)
    assert client.post(TOKEN_URL, {"username": "alice", "password": TEST_PASSWORD}, format="json").status_code == 200
    _fail_api_login(client, "alice", settings.AXES_FAILURE_LIMIT - 1)
    assert client.post(TOKEN_URL, {"username": "alice", "password": TEST_PASSWORD}, format="json").status_code == 200


# --- Password validators --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("weak", ["password", "12345678", "short", "newcomer-newcomer"])
def test_weak_passwords_are_refused_on_the_api_and_the_web(weak: str) -> None:
    assert len(settings.AUTH_PASSWORD_VALIDATORS) >= 4
    api = APIClient().post(
        "/api/v1/auth/register/",
        {"username": "newcomer-newcomer", "email": "n@example.com", "password": weak},
        format="json",
    )
    assert api.status_code == 400
    assert "password" in api.json()["errors"]
    web = Client().post(
        "/accounts/signup/",
        {"username": "newcomer-newcomer", "email": "n@example.com", "password": weak, "password_confirm": weak},
    )
    assert web.status_code == 400
    assert not User.objects.filter(username="newcomer-newcomer").exists()


# --- CSRF on every web form -----------------------------------------------------------------------------------------

FORM = re.compile(r"<form\b[^>]*>.*?</form>", re.S | re.I)


def _web_rows_with(method: str) -> list[str]:
    keys = {route.key for route in project_routes() if not route.route.startswith(("api/", "admin/"))}
    return sorted(key for key in keys if key in POLICY and method in POLICY[key].access)


def _url_for(key: str, scene: Scene) -> str:
    row = POLICY[key]
    route = next(route for route in project_routes() if route.key == key)
    kwargs: dict[str, Any] = {}
    if route.kwargs:
        target = scene.obj(str(row.obj))
        kwargs = {name: getattr(target, name) if hasattr(target, name) else target.pk for name in route.kwargs}
    return reverse(key, kwargs=kwargs)


@pytest.mark.parametrize("key", _web_rows_with("POST"))
def test_every_web_post_without_a_csrf_token_is_refused(key: str) -> None:
    scene = build_scene()
    row = POLICY[key]
    client = Client(enforce_csrf_checks=True)
    client.force_login(scene.staff_with_grant if key.startswith("staff:") else scene.owner)
    before = database_snapshot()
    body = row.body["POST"](scene) if "POST" in row.body else {}
    response = client.post(_url_for(key, scene), body)
    assert response.status_code == 403, f"{key}: a POST without a CSRF token was not refused ({response.status_code})"
    assert not changed_tables(before, database_snapshot())


def test_every_post_form_on_every_page_carries_a_csrf_token() -> None:
    scene = build_scene()
    pages_checked = forms_checked = 0
    for key in _web_rows_with("GET"):
        for actor, user in (("anonymous", None), ("owner", scene.owner), ("staff", scene.staff_with_grant)):
            client = Client()
            if user is not None:
                client.force_login(user)
            response = client.get(_url_for(key, scene))
            if response.status_code != 200 or "text/html" not in response["Content-Type"]:
                continue
            pages_checked += 1
            for form in FORM.findall(response.content.decode()):
                if re.search(r'method\s*=\s*"?post', form, re.I):
                    forms_checked += 1
                    assert "csrfmiddlewaretoken" in form, f"{key} as {actor}: a POST form without a CSRF token"
    assert pages_checked >= 10 and forms_checked >= 5, (pages_checked, forms_checked)
