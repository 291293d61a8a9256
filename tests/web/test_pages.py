"""Every web page answers with the right status, for the right people, and bad input gets a helpful page."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import User
from shop.models import Category, Product
from tests.factories import TEST_PASSWORD, ProductFactory

pytestmark = pytest.mark.django_db


def test_public_catalog_pages_render_for_anonymous_visitors(client: Client, sencha: Product, tea: Category) -> None:
    for url in ["/", "/c/tea/", "/search/", "/search/?q=sen", "/p/sencha/"]:
        response = client.get(url)
        assert response.status_code == 200, url
    assert "Sencha" in client.get("/").content.decode()
    assert "Log in to buy" in client.get("/p/sencha/").content.decode()


def test_unknown_category_and_product_are_helpful_404_pages(client: Client, db: None) -> None:
    for url in ["/c/nope/", "/p/nope/"]:
        response = client.get(url)
        assert response.status_code == 404
        assert "Back to the shop" in response.content.decode()


def test_search_and_pagination_survive_bad_input(client: Client, tea: Category) -> None:
    ProductFactory.create_batch(15, category=tea)
    assert client.get("/search/?q=" + "x" * 5000).status_code == 200
    assert client.get("/search/?q=Product&page=abc").status_code == 200
    last = client.get("/c/tea/?page=99999")
    assert last.status_code == 200
    assert "Page 2 of 2" in last.content.decode()


def test_empty_states_say_what_to_do(alice_client: Client, client: Client, tea: Category) -> None:
    assert "Nothing matches" in client.get("/search/?q=zzzz").content.decode()
    assert "Your cart is empty" in alice_client.get("/cart/").content.decode()
    assert "No orders yet" in alice_client.get("/orders/").content.decode()
    assert "nothing to check out" in alice_client.get("/cart/checkout/").content.decode()


@pytest.mark.parametrize("url", ["/cart/", "/cart/checkout/", "/orders/"])
def test_private_pages_send_anonymous_visitors_to_log_in(client: Client, url: str, db: None) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(f"/accounts/login/?next={url}")


def test_signup_creates_the_account_and_signs_in(client: Client, db: None) -> None:
    response = client.post(
        "/accounts/signup/",
        {
            "username": "dora",
            "email": "dora@example.com",
            "password": "Sturdy-pass-42",
            "password_confirm": "Sturdy-pass-42",
        },
    )
    assert response.status_code == 302
    assert User.objects.filter(username="dora").exists()
    assert client.get("/cart/").status_code == 200


def test_signup_with_bad_input_explains_every_problem_and_writes_nothing(client: Client, alice: User) -> None:
    response = client.post(
        "/accounts/signup/",
        {"username": "alice", "email": "not-an-email", "password": "123", "password_confirm": "456"},
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "The two passwords differ" in body
    assert "Enter a valid email address" in body
    assert User.objects.count() == 1


def test_login_issues_a_new_session_and_logout_kills_it(client: Client, alice: User) -> None:
    client.get("/accounts/login/")
    anonymous_session = client.cookies.get(settings.SESSION_COOKIE_NAME)
    response = client.post("/accounts/login/", {"username": "alice", "password": TEST_PASSWORD})
    assert response.status_code == 302
    session_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    # Session fixation: the key after login is not the one before it.
    assert anonymous_session is None or anonymous_session.value != session_key

    client.post("/accounts/logout/")
    # Replaying the old cookie after logout gets nobody: the session is dead on the server.
    replay = Client()
    replay.cookies[settings.SESSION_COOKIE_NAME] = session_key
    assert replay.get("/orders/").status_code == 302


def test_wrong_password_is_a_400_with_a_clear_message(client: Client, alice: User) -> None:
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 400
    assert "do not match" in response.content.decode()


def test_signup_next_parameter_cannot_redirect_off_site(client: Client, db: None) -> None:
    response = client.post(
        "/accounts/signup/?next=https://evil.example/",
        {
            "username": "erin",
            "email": "erin@example.com",
            "password": "Sturdy-pass-42",
            "password_confirm": "Sturdy-pass-42",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/"


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/cart/add/{product}/", {"quantity": 1}),
        ("/cart/checkout/", {}),
        ("/accounts/logout/", {}),
    ],
)
def test_every_write_form_is_csrf_protected(alice: User, sencha: Product, url: str, data: dict[str, object]) -> None:
    from tests.web.conftest import signed_in

    client = signed_in(alice, enforce_csrf_checks=True)
    response = client.post(url.format(product=sencha.pk), data)
    assert response.status_code == 403
    assert client.get("/cart/").context["cart"].is_empty  # nothing was added


def test_pages_render_the_csrf_token_in_every_post_form(alice_client: Client, sencha: Product) -> None:
    alice_client.post(f"/cart/add/{sencha.pk}/", {"quantity": 1})
    for url in ["/p/sencha/", "/cart/", "/cart/checkout/"]:
        body = alice_client.get(url).content.decode()
        assert body.count('method="post"') == body.count('name="csrfmiddlewaretoken"'), url
