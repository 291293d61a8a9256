"""ANTI-PATTERN on purpose (workshop twin of frontend state under concurrent use); the fix: orders/views.py.

An order edit page as a quick code generator writes it: the last save wins, and its script waits forever.
Compare it with `order_update_details` in orders/services.py, `order_edit` in orders/views.py and
`enhanceBusyForm` in static/js/shop.js (side by side on /workshop/). Its script is
workshop/static/workshop/twins/frontend_state.js. Never imported by the real shop.
Fix-it track: make this file and its script hold under `make workshop-check MODE=frontend-state`.
"""

from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render

from orders.models import Order

FIELDS = {
    "name": "shipping_name",
    "line1": "shipping_line1",
    "line2": "shipping_line2",
    "city": "shipping_city",
    "postal_code": "shipping_postal_code",
    "country": "shipping_country",
    "note": "note",
}


def order_list(request):
    orders = Order.objects.filter(customer=request.user).order_by("-id")[:20]
    return render(request, "workshop/twins/frontend_state_list.html", {"orders": orders})


def edit_order(request, order_id):
    order = get_object_or_404(Order, id=order_id, customer=request.user)
    if request.method == "POST":
        for field, attribute in FIELDS.items():
            setattr(order, attribute, request.POST.get(field, ""))
        order.save()
        return JsonResponse({"ok": True, "message": "Saved!"})
    values = {field: getattr(order, attribute) for field, attribute in FIELDS.items()}
    return render(request, "workshop/twins/frontend_state_edit.html", {"order": order, "values": values})
