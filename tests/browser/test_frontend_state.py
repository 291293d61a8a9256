"""Failure mode 5 in a real browser: double submits, stale tabs, dropped connections, slow servers, live status.

Each test drives headless Chromium against the live server and then asserts on the database: the UI is the
courtesy, the idempotency key / cart version / order version are the guarantee, and both are checked.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, Request, Route, expect
from zeal import zeal_ignore

from accounts.models import User
from orders.models import Order, OrderStatus
from orders.placement import order_place
from orders.services import LineRequest, ShippingAddress, order_transition
from shop.models import Product
from tests.browser.conftest import WAIT_MS, ContextFactory, open_checkout, screenshot

pytestmark = pytest.mark.browser

ORDER_PAGE = re.compile(r"/orders/\d+/\?placed=(new|again)$")


def checkout_posts(page: Page) -> list[Request]:
    posts: list[Request] = []
    page.on("request", lambda req: posts.append(req) if req.method == "POST" and "/cart/checkout/" in req.url else None)
    return posts


def place_order_for(user: User, product: Product) -> Order:
    with zeal_ignore():
        return order_place(
            customer=user,
            lines=[LineRequest(product_id=product.pk, quantity=1)],
            shipping_address=ShippingAddress(
                name="Alice Liddell", line1="1 Rabbit Hole", city="Berlin", postal_code="10115", country="DE"
            ),
            idempotency_key="browser-order",
        ).order


# --- Double submits ------------------------------------------------------------------------------------------


def test_double_click_on_place_order_makes_exactly_one_order(page: Page, alice: User, alice_cart: None) -> None:
    posts = checkout_posts(page)
    open_checkout(page)

    page.get_by_role("button", name="Place order").dblclick()

    page.wait_for_url(ORDER_PAGE)
    assert Order.objects.filter(customer=alice).count() == 1
    assert len(posts) == 1  # the courtesy: the second click never left the browser


def test_rapid_enter_presses_make_exactly_one_order(page: Page, alice: User, alice_cart: None) -> None:
    posts = checkout_posts(page)
    open_checkout(page)

    page.focus("#id_city")
    for _ in range(5):
        page.keyboard.press("Enter")

    page.wait_for_url(ORDER_PAGE)
    assert Order.objects.filter(customer=alice).count() == 1
    assert len(posts) == 1


def test_double_click_without_javascript_still_makes_one_order(
    new_context: ContextFactory, alice: User, alice_cart: None
) -> None:
    # No JavaScript, so nothing in the browser stops the second submit: the form's idempotency key must.
    page = new_context(alice, java_script_enabled=False).new_page()
    posts = checkout_posts(page)
    open_checkout(page)

    page.get_by_role("button", name="Place order").dblclick()

    page.wait_for_url(ORDER_PAGE)
    assert len(posts) >= 1
    assert Order.objects.filter(customer=alice).count() == 1


# --- Stale data ----------------------------------------------------------------------------------------------


def test_two_contexts_edit_one_order_and_the_second_sees_the_conflict(
    new_context: ContextFactory, alice: User, sencha: Product
) -> None:
    order = place_order_for(alice, sencha)
    first = new_context(alice).new_page()
    second = new_context(alice).new_page()
    first.goto(f"/orders/{order.pk}/edit/")
    second.goto(f"/orders/{order.pk}/edit/")

    first.fill("#id_city", "Potsdam")
    first.get_by_role("button", name="Save changes").click()
    first.wait_for_url(f"**/orders/{order.pk}/")
    second.fill("#id_line1", "2 Other Street")
    second.get_by_role("button", name="Save changes").click()

    expect(second.get_by_role("heading", name="Someone else changed this order")).to_be_visible()
    expect(second.locator("table.conflict")).to_contain_text("Potsdam")
    expect(second.locator("table.conflict")).to_contain_text("2 Other Street")
    screenshot(second, "order-edit-conflict")
    kept = Order.objects.get(pk=order.pk)
    assert (kept.shipping_city, kept.shipping_line1) == ("Potsdam", "1 Rabbit Hole")  # first change intact

    second.get_by_role("button", name="Re-apply my changes").click()
    second.wait_for_url(f"**/orders/{order.pk}/")
    merged = Order.objects.get(pk=order.pk)
    assert (merged.shipping_city, merged.shipping_line1) == ("Potsdam", "2 Other Street")


def test_checkout_from_a_stale_tab_is_told_and_orders_nothing_wrong(
    new_context: ContextFactory, alice: User, alice_cart: None, earl_grey: Product
) -> None:
    context = new_context(alice)
    stale_tab = context.new_page()
    open_checkout(stale_tab)
    other_tab = context.new_page()
    other_tab.goto("/p/earl-grey/")
    other_tab.get_by_role("button", name="Add to cart").click()
    expect(other_tab.get_by_text("Added 1 \N{MULTIPLICATION SIGN} Earl Grey to your cart.")).to_be_visible()

    stale_tab.get_by_role("button", name="Place order").click()

    problem = stale_tab.locator("[data-checkout-problem]")
    expect(problem).to_contain_text("changed in another tab")
    expect(problem).to_contain_text("Earl Grey was added (quantity 1).")
    expect(problem).to_be_focused()
    screenshot(stale_tab, "checkout-stale-tab")
    assert not Order.objects.exists()

    # The refreshed form shows the cart as it is now; placing it orders exactly that.
    stale_tab.get_by_role("button", name="Place order").click()
    stale_tab.wait_for_url(ORDER_PAGE)
    order = Order.objects.get(customer=alice)
    assert sorted(order.lines.values_list("sku", "quantity")) == [("TEA-1", 2), ("TEA-2", 1)]


# --- Requests that go wrong ----------------------------------------------------------------------------------


def test_offline_during_checkout_shows_an_error_and_the_retry_makes_one_order(
    new_context: ContextFactory, alice: User, alice_cart: None
) -> None:
    context = new_context(alice)
    page = context.new_page()
    open_checkout(page)

    context.set_offline(True)
    page.get_by_role("button", name="Place order").click()
    error = page.locator("[data-checkout-error]")
    expect(error).to_contain_text("the connection dropped")
    expect(page.get_by_role("button", name="Try again")).to_be_focused()
    screenshot(page, "checkout-offline")
    assert not Order.objects.exists()

    context.set_offline(False)
    page.get_by_role("button", name="Try again").click()
    page.wait_for_url(ORDER_PAGE)
    assert Order.objects.filter(customer=alice).count() == 1


def test_response_lost_after_the_order_was_placed_retry_lands_on_the_same_order(
    page: Page, alice: User, alice_cart: None
) -> None:
    lost = {"done": False}

    def lose_first_response(route: Route) -> None:
        if route.request.method == "POST" and not lost["done"]:
            lost["done"] = True
            route.fetch(max_redirects=0)  # the server receives the order and commits it...
            route.abort("connectionreset")  # ...and the answer never reaches the browser
            return
        route.continue_()

    page.route("**/cart/checkout/", lose_first_response)
    open_checkout(page)
    page.get_by_role("button", name="Place order").click()
    expect(page.locator("[data-checkout-error]")).to_be_visible()
    assert Order.objects.filter(customer=alice).count() == 1

    page.get_by_role("button", name="Try again").click()

    page.wait_for_url(re.compile(r"/orders/\d+/\?placed=again$"))
    expect(page.get_by_text("was already placed")).to_be_visible()
    assert Order.objects.filter(customer=alice).count() == 1


def test_slow_server_shows_the_spinner_then_the_outcome(page: Page, alice: User, alice_cart: None) -> None:
    held: list[Route] = []
    page.route(
        "**/cart/checkout/", lambda route: held.append(route) if route.request.method == "POST" else route.continue_()
    )
    open_checkout(page)
    button = page.get_by_role("button", name="Placing your order")

    page.get_by_role("button", name="Place order").click()

    expect(button).to_be_disabled()
    expect(button.locator("[data-spinner]")).to_be_visible()
    expect(page.locator("form[data-checkout-form]")).to_have_attribute("aria-busy", "true")
    screenshot(page, "checkout-in-flight")
    assert len(held) == 1
    held[0].continue_()
    page.wait_for_url(ORDER_PAGE)
    assert Order.objects.filter(customer=alice).count() == 1


def test_a_server_that_never_answers_resolves_to_still_working_within_the_bound(
    page: Page, alice: User, alice_cart: None
) -> None:
    state = {"hold": True}
    held: list[Route] = []

    def maybe_hold(route: Route) -> None:
        if route.request.method == "POST" and state["hold"]:
            held.append(route)
            return
        route.continue_()

    page.route("**/cart/checkout/", maybe_hold)
    open_checkout(page)
    # The bound is 20 s in the page; shortened here so the test waits on the app's timer, not the test's.
    page.locator("form[data-checkout-form]").evaluate("form => { form.dataset.boundMs = '1500'; }")

    page.get_by_role("button", name="Place order").click()

    error = page.locator("[data-checkout-error]")
    expect(error).to_contain_text("Still working", timeout=WAIT_MS)
    expect(error.get_by_role("link", name="Check your orders")).to_have_attribute("href", "/orders/")
    expect(page.get_by_role("button", name="Place order")).to_be_enabled()
    assert not Order.objects.exists()

    state["hold"] = False
    page.get_by_role("button", name="Try again").click()
    page.wait_for_url(ORDER_PAGE)
    assert Order.objects.filter(customer=alice).count() == 1


# --- Live status ---------------------------------------------------------------------------------------------


def test_order_page_follows_the_payment_until_paid(page: Page, alice: User, sencha: Product) -> None:
    order = place_order_for(alice, sencha)
    page.goto(f"/orders/{order.pk}/")
    badge = page.locator("[data-status-badge]")
    expect(badge).to_have_text("Pending payment")

    order_transition(order_id=order.pk, from_status=OrderStatus.PENDING_PAYMENT, to_status=OrderStatus.PAID)

    expect(badge).to_have_text("Paid", timeout=WAIT_MS)
    expect(page.locator("[data-status-text]")).to_have_text("Payment received. We will ship it soon.")
    expect(page.get_by_role("link", name="Edit address or note")).to_be_hidden()


def test_order_page_stops_polling_after_the_bound_and_says_where_to_check(
    page: Page, alice: User, sencha: Product
) -> None:
    order = place_order_for(alice, sencha)
    polls: list[str] = []
    page.on("request", lambda req: polls.append(req.url) if req.url.endswith("/status/") else None)

    def short_bound(route: Route) -> None:
        response = route.fetch()
        route.fulfill(response=response, body=response.text().replace('data-bound-ms="90000"', 'data-bound-ms="2500"'))

    page.route(f"**/orders/{order.pk}/", short_bound)
    page.goto(f"/orders/{order.pk}/")

    expect(page.locator("[data-status-text]")).to_contain_text("stopped checking automatically", timeout=WAIT_MS)
    count_at_bound = len(polls)
    assert 1 <= count_at_bound <= 3  # backoff: 1 s, then 1.6 s, ... not a poll per frame
    page.wait_for_timeout(3000)
    assert len(polls) == count_at_bound  # and no polling after the bound


def test_a_busy_answer_offers_the_same_key_retry_not_a_dead_end(page: Page, alice: User, alice_cart: None) -> None:
    answered = {"busy": False}

    def busy_once(route: Route) -> None:
        if route.request.method == "POST" and not answered["busy"]:
            answered["busy"] = True
            route.fulfill(status=503, headers={"Retry-After": "1"}, body="<h1>busy</h1>", content_type="text/html")
            return
        route.continue_()

    page.route("**/cart/checkout/", busy_once)
    open_checkout(page)
    page.get_by_role("button", name="Place order").click()

    expect(page.locator("[data-checkout-error]")).to_contain_text("busy right now (503)")
    assert not Order.objects.exists()
    page.get_by_role("button", name="Try again").click()
    page.wait_for_url(ORDER_PAGE)
    assert Order.objects.filter(customer=alice).count() == 1
