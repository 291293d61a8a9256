"""Every page carries the Content-Security-Policy, and no page the shop renders has inline code it would block."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.models import User
from shop.models import Product

pytestmark = pytest.mark.django_db

INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=\"|\son[a-z]+=\"", re.IGNORECASE)


@pytest.mark.parametrize(
    "url", ["/", "/p/sencha/", "/search/?q=sen", "/cart/", "/cart/checkout/", "/orders/", "/api/v1/docs/"]
)
def test_pages_carry_the_policy_and_no_inline_code(alice_client: Client, sencha: Product, url: str) -> None:
    response = alice_client.get(url)
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"):
        assert directive in policy
    assert "unsafe-inline" not in policy
    # JSON data blocks (<script type="application/json">) are not code; the shop has none today.
    assert INLINE.findall(response.content.decode()) == []


def test_the_swagger_ui_init_script_is_a_file_the_policy_allows(client: Client) -> None:
    page = client.get("/api/v1/docs/").content.decode()
    script = re.search(r'<script src="([^"]+\?[^"]*script=[^"]*)"', page)
    assert script is not None
    loaded = client.get(script.group(1).replace("&amp;", "&"))
    assert loaded.status_code == 200
    assert loaded["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in loaded.content.decode()


def test_the_error_pages_carry_the_policy_too(client: Client, alice: User) -> None:
    assert "script-src 'self'" in client.get("/p/no-such-tea/")["Content-Security-Policy"]
