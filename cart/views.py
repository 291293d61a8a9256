"""Cart and checkout pages. Thin: parse the form, call one service, redirect (PRG) or re-render with errors.

Everything here works without JavaScript; static/js/shop.js only makes it nicer (busy buttons, retry).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import User
from cart.forms import AddToCartForm, CheckoutForm, SetQuantityForm
from cart.selectors import (
    CartView,
    cart_changes,
    cart_get,
    cart_snapshot,
    checkout_address_initial,
    product_for_cart_message,
)
from cart.services import (
    CartChanged,
    CartEmpty,
    PricesChanged,
    cart_add_item,
    cart_checkout,
    cart_remove_item,
    cart_set_quantity,
)
from core.auth import request_user
from core.errors import ApplicationError, InsufficientStock
from core.problems import render_refusal
from core.web import new_form_token, see_other
from orders.forms import EDITABLE_FIELDS


@login_required
def cart_detail(request: HttpRequest) -> HttpResponse:
    return render(request, "cart/cart_detail.html", {"cart": cart_get(user=request_user(request))})


def _form_errors_text(form: AddToCartForm | SetQuantityForm) -> str:
    return " ".join(str(error) for errors in form.errors.values() for error in errors)


def _product_page(product_id: int) -> tuple[str, str]:
    """Where to send the shopper back to after an add, and the product's name for the message."""
    found = product_for_cart_message(product_id=product_id)
    if found is None:
        return reverse("cart:detail"), "That product"
    return reverse("shop:product", kwargs={"slug": found[0]}), found[1]


@login_required
@require_http_methods(["GET", "POST"])
def cart_add(request: HttpRequest, product_id: int) -> HttpResponse:
    if request.method != "POST":
        # A login redirect lands here with GET: show the cart instead of a 405.
        return redirect("cart:detail")
    product_url, product_name = _product_page(product_id)
    form = AddToCartForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors_text(form))
        return see_other(product_url)
    try:
        update = cart_add_item(
            user=request_user(request),
            product_id=product_id,
            quantity=form.cleaned_data["quantity"],
            form_token=form.cleaned_data["form_token"] or None,
        )
    except ApplicationError as error:
        messages.error(request, error.detail)
        return see_other(product_url)
    if update.changed:  # a replayed double submit already said so once
        messages.success(
            request, f"Added {form.cleaned_data['quantity']} \N{MULTIPLICATION SIGN} {product_name} to your cart."
        )
    return see_other(product_url)


@login_required
@require_POST
def cart_update(request: HttpRequest, product_id: int) -> HttpResponse:
    form = SetQuantityForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors_text(form))
        return see_other(reverse("cart:detail"))
    try:
        update = cart_set_quantity(
            user=request_user(request), product_id=product_id, quantity=form.cleaned_data["quantity"]
        )
    except ApplicationError as error:
        messages.error(request, error.detail)
    else:
        if update.changed:
            messages.success(request, "Cart updated.")
    return see_other(reverse("cart:detail"))


@login_required
@require_POST
def cart_remove(request: HttpRequest, product_id: int) -> HttpResponse:
    if cart_remove_item(user=request_user(request), product_id=product_id).changed:
        messages.success(request, "Removed from your cart.")
    return see_other(reverse("cart:detail"))


# --- Checkout -------------------------------------------------------------------------------------------------


def _fresh_checkout_form(cart: CartView, address: dict[str, Any]) -> CheckoutForm:
    """A newly rendered checkout form: its own idempotency key, and the cart version and lines it shows."""
    return CheckoutForm(
        initial={
            **address,
            "idempotency_key": new_form_token(),
            "cart_version": cart.version,
            "cart_snapshot": cart_snapshot(cart),
        }
    )


def _render_checkout(
    request: HttpRequest,
    *,
    cart: CartView,
    form: CheckoutForm,
    status: int = 200,
    problem: str | None = None,
    changes: list[str] | None = None,
) -> HttpResponse:
    context = {"cart": cart, "form": form, "problem": problem, "changes": changes or []}
    return render(request, "cart/checkout.html", context, status=status)


def _stock_changes(user: User, error: InsufficientStock) -> tuple[CartView, list[str]]:
    cart = cart_get(user=user)
    names = {line.product.pk: line.product.name for line in cart.lines}
    changes = [
        f"{names.get(item['product_id'], 'An item')}: you asked for {item['requested']}, {item['available']} left."
        for item in error.extra.get("items", [])
    ]
    return cart, changes


@login_required
@require_http_methods(["GET", "POST"])
def checkout(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    if request.method == "GET":
        cart = cart_get(user=user)
        return _render_checkout(
            request, cart=cart, form=_fresh_checkout_form(cart, checkout_address_initial(user=user))
        )

    form = CheckoutForm(request.POST)
    if not form.is_valid():
        # Same form, same key: nothing was written, so fixing a typo and resubmitting is still one order.
        return _render_checkout(request, cart=cart_get(user=user), form=form, status=400)
    address = {name: form.cleaned_data[name] for name in EDITABLE_FIELDS}
    try:
        result = cart_checkout(
            user=user,
            expected_cart_version=form.cleaned_data["cart_version"],
            shipping_address=form.shipping_address(),
            note=form.cleaned_data["note"],
            idempotency_key=form.cleaned_data["idempotency_key"],
            expected_prices=form.seen_prices(),
        )
    except CartChanged as error:
        cart = cart_get(user=user)
        changes = cart_changes(seen=form.seen_lines(), current=cart) or ["The cart was changed and changed back."]
        return _render_checkout(
            request,
            cart=cart,
            form=_fresh_checkout_form(cart, address),
            status=409,
            problem=error.detail,
            changes=changes,
        )
    except PricesChanged as error:
        cart = cart_get(user=user)
        return _render_checkout(
            request,
            cart=cart,
            form=_fresh_checkout_form(cart, address),
            status=409,
            problem=error.detail,
            changes=list(error.extra.get("changes", [])),
        )
    except InsufficientStock as error:
        cart, changes = _stock_changes(user, error)
        return _render_checkout(
            request,
            cart=cart,
            form=_fresh_checkout_form(cart, address),
            status=409,
            problem="Some items sold out while you were checking out. Adjust your cart, then place the order.",
            changes=changes,
        )
    except CartEmpty as error:
        messages.info(request, error.detail)
        return see_other(reverse("cart:detail"))
    except ApplicationError as error:
        return render_refusal(request, error, back_url=reverse("cart:detail"), back_label="Back to your cart")
    outcome = "new" if result.created else "again"
    return see_other(f"{result.order.get_absolute_url()}?placed={outcome}")
