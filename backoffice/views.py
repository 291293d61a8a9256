"""Staff pages (/staff/...). Being staff opens the section; grants (django-guardian) decide which orders and
products each page shows. Thin: one scoped selector or service per view."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backoffice.forms import ProductEditForm
from backoffice.permissions import staff_required
from backoffice.selectors import (
    categories_granted,
    centres_granted,
    fulfilment_queue_counts,
    order_get_for_fulfilment,
    order_list_for_fulfilment,
    product_get_for_catalog,
    product_list_for_catalog,
)
from backoffice.services import staff_order_fulfil
from core.auth import request_user
from core.errors import ApplicationError, NotFound, PreconditionFailed
from core.problems import render_refusal
from core.web import paginate, see_other
from orders.models import Order, OrderStatus
from shop.models import Product
from shop.services import product_update

PER_PAGE = 25


def _granted_order(request: HttpRequest, pk: int) -> Order:
    # Probing: an order of a centre you were not granted is indistinguishable from a missing one (404).
    return order_get_for_fulfilment(user=request_user(request), order_id=pk)


def _granted_product(request: HttpRequest, pk: int) -> Product:
    return product_get_for_catalog(user=request_user(request), product_id=pk)


@staff_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    context = {
        "centres": centres_granted(user=user).order_by("name"),
        "queue": fulfilment_queue_counts(user=user),
        "categories": categories_granted(user=user).order_by("name"),
    }
    return render(request, "backoffice/dashboard.html", context)


@staff_required
@require_GET
def order_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") or None
    if status not in OrderStatus.values:
        status = None  # Bad input: an unknown status filter shows every status instead of an error.
    orders = order_list_for_fulfilment(user=request_user(request), status=status)
    page = paginate(request, orders, per_page=PER_PAGE)
    return render(
        request, "backoffice/order_list.html", {"page": page, "status": status, "statuses": OrderStatus.choices}
    )


@staff_required
@require_GET
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "backoffice/order_detail.html", {"order": _granted_order(request, pk)})


@staff_required
@require_POST
def order_fulfil_view(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        shipped = staff_order_fulfil(user=request_user(request), order_id=pk)
    except NotFound:
        raise  # the 404 page, not the refusal message below
    except ApplicationError as error:
        return render_refusal(
            request, error, back_url=reverse("staff:order", kwargs={"pk": pk}), back_label="Back to the order"
        )
    messages.success(request, f"Order {shipped.number} is marked as shipped.")
    return see_other(reverse("staff:order", kwargs={"pk": pk}))


@staff_required
@require_GET
def product_list(request: HttpRequest) -> HttpResponse:
    page = paginate(request, product_list_for_catalog(user=request_user(request)), per_page=PER_PAGE)
    return render(request, "backoffice/product_list.html", {"page": page})


@staff_required
@require_http_methods(["GET", "POST"])
def product_edit(request: HttpRequest, pk: int) -> HttpResponse:
    product = _granted_product(request, pk)
    if request.method == "GET":
        return render(
            request, "backoffice/product_edit.html", {"product": product, "form": ProductEditForm.for_product(product)}
        )
    form = ProductEditForm(request.POST)
    if not form.is_valid():
        return render(request, "backoffice/product_edit.html", {"product": product, "form": form}, status=400)
    try:
        updated = product_update(
            editor=request_user(request),
            product_id=product.pk,
            expected_version=form.cleaned_data["version"],
            changes=form.changes(),
        )
    except PreconditionFailed as error:
        # Lost update: show the latest values; the manager re-applies their change on top of them.
        latest = _granted_product(request, pk)
        messages.error(request, f"{error.detail} The form now shows the latest values; apply your change again.")
        context = {"product": latest, "form": ProductEditForm.for_product(latest)}
        return render(request, "backoffice/product_edit.html", context, status=409)
    messages.success(request, f"{updated.name} is saved (version {updated.version}).")
    return see_other(reverse("staff:product", kwargs={"pk": pk}))
