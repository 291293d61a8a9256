"""A screenshot of every main page, saved as a test artifact (test-artifacts/screenshots/, gitignored).

Also a smoke check that each page renders in a real browser without a script error or a failed request.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect
from zeal import zeal_ignore

from accounts.models import User
from cart.services import cart_add_item
from orders.placement import order_place
from orders.services import LineRequest, ShippingAddress
from shop.models import Product
from tests.browser.conftest import ContextFactory, open_checkout, screenshot

pytestmark = pytest.mark.browser


def watch_for_errors(page: Page) -> list[str]:
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on("console", lambda message: _console(problems, message))
    page.on(
        "response",
        lambda response: problems.append(f"{response.status} {response.url}") if response.status >= 500 else None,
    )
    return problems


def _console(problems: list[str], message: ConsoleMessage) -> None:
    # A 404 page is expected once (it is one of the pages); anything else on the console is a problem.
    if message.type == "error" and "404" not in message.text:
        problems.append(message.text)


def test_screenshot_every_main_page(
    new_context: ContextFactory, alice: User, sencha: Product, earl_grey: Product
) -> None:
    visitor = new_context().new_page()
    problems = watch_for_errors(visitor)
    for name, url in [
        ("home", "/"),
        ("category", "/c/tea/"),
        ("search", "/search/?q=tea"),
        ("search-empty", "/search/?q=zzz"),
        ("product-anonymous", "/p/sencha/"),
        ("login", "/accounts/login/"),
        ("signup", "/accounts/signup/"),
    ]:
        visitor.goto(url)
        expect(visitor.locator("h1").first).to_be_visible()
        screenshot(visitor, name)

    page = new_context(alice).new_page()
    problems += watch_for_errors(page)
    page.goto("/cart/")
    screenshot(page, "cart-empty")
    page.goto("/p/sencha/")
    page.get_by_role("button", name="Add to cart").click()
    expect(page.get_by_role("status").first).to_contain_text("Added 1")
    screenshot(page, "product")
    with zeal_ignore():
        cart_add_item(user=alice, product_id=earl_grey.pk, quantity=2)
        earlier = order_place(
            customer=alice,
            lines=[LineRequest(product_id=earl_grey.pk, quantity=1)],
            shipping_address=ShippingAddress(
                name="Alice Liddell", line1="1 Rabbit Hole", city="Berlin", postal_code="10115", country="DE"
            ),
            idempotency_key="earlier",
        ).order
    page.goto("/cart/")
    screenshot(page, "cart")
    open_checkout(page)
    screenshot(page, "checkout")
    page.get_by_role("button", name="Place order").click()
    page.wait_for_url("**/orders/*/?placed=new")
    screenshot(page, "order-detail")
    page.goto("/orders/")
    screenshot(page, "orders")
    page.goto(f"/orders/{earlier.pk}/edit/")
    screenshot(page, "order-edit")
    page.goto(f"/orders/{earlier.pk}/cancel/")
    screenshot(page, "order-cancel")
    page.goto("/orders/999999/")
    screenshot(page, "not-found")

    phone = new_context(alice, viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
    problems += watch_for_errors(phone)
    for name, url in [("phone-home", "/"), ("phone-orders", "/orders/"), ("phone-cart", "/cart/")]:
        phone.goto(url)
        screenshot(phone, name)

    assert problems == []
