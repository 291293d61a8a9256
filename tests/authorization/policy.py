"""THE AUTHORIZATION POLICY TABLE: who may do what on every route of the project.

Every URL pattern (web pages, API, admin, health) must have a row here. `test_route_coverage.py` walks the URL
resolver and fails for any route without a row, so an endpoint nobody thought about cannot ship.
`test_matrix.py` then calls every row, for every method and every actor, and checks the status; for denied
cells it also checks that the body leaks none of the owner's data and that the database did not change.

HOW TO ADD YOUR ROUTE (one row, next to its neighbours):

    "orders:detail": Route(                    # key: "namespace:name" (or the route string if unnamed)
        obj="order",                           # which demo object fills the URL kwargs (see OBJECTS below)
        access={
            "GET": cells(anonymous=302, owner=200, other_customer=404, staff_without_grant=404,
                         staff_with_grant=404),
            "POST": owner_only(anonymous=302),  # shorthands below: everyone(), signed_in(), owner_only(), ...
        },
        body={"POST": lambda scene: {"note": "hello"}},   # optional: form data (web) / JSON (API) per method
    ),

Actors (the matrix builds them fresh for every cell; see `tests/authorization/scene.py`):
    anonymous            not signed in
    owner                alice, a customer who owns the object (her order, her cart item)
    other_customer       bob, another customer, with his own orders
    staff_without_grant  is_staff, but granted only OTHER objects (Rotterdam centre, Coffee category)
    staff_with_grant     is_staff, granted the object (Berlin centre via the "Fulfilment Berlin" group,
                         Tea category directly)

Objects (`obj`): "order" (alice's order, routed to Berlin, pending_payment), "paid_order" (alice's paid
order, Berlin), "product" (a Tea product), "category" (Tea), "cart_item" (an item in alice's cart),
"centre" (Berlin). URL kwargs named `pk`, `id`, `*_id` get the object's pk; `slug` gets its slug; any other
kwarg name is read as an attribute of the object.

Rules of thumb the rows follow (see docs/patterns/04-authorization.md):
  * Deny by default. Web pages redirect anonymous users to the login page (302: LoginRequiredMiddleware);
    a public page opts out with @login_not_required. API views are IsAuthenticated (401) unless they set
    permission_classes = [AllowAny].
  * Someone else's object answers 404, never 403: ids cannot be probed.
  * A customer on a staff route gets 403 (the section is closed to them, no object is looked up);
    staff without the object grant get 404 (the object is outside their scoped queryset).
  * Statuses are exact. If the honest answer depends on the request body, give the row a body that makes
    the allowed actor succeed.
Actions are their own routes (`orders/<id>/cancel/`), so every (route, method) pair is one decision.
Glob keys (`"admin:*"`) cover a whole family; `sample` names the concrete route the matrix calls for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

ANONYMOUS = "anonymous"
OWNER = "owner"
OTHER_CUSTOMER = "other_customer"
STAFF_WITHOUT_GRANT = "staff_without_grant"
STAFF_WITH_GRANT = "staff_with_grant"
ACTORS = (ANONYMOUS, OWNER, OTHER_CUSTOMER, STAFF_WITHOUT_GRANT, STAFF_WITH_GRANT)

# Web pages send anonymous users to the login page; the API answers 401 with problem+json.
WEB_LOGIN = 302
API_LOGIN = 401

Cells = dict[str, int]
Builder = Callable[[Any], dict[str, Any]]


def cells(*, anonymous: int, owner: int, other_customer: int, staff_without_grant: int, staff_with_grant: int) -> Cells:
    """The expected status for each actor, spelled out."""
    return {
        ANONYMOUS: anonymous,
        OWNER: owner,
        OTHER_CUSTOMER: other_customer,
        STAFF_WITHOUT_GRANT: staff_without_grant,
        STAFF_WITH_GRANT: staff_with_grant,
    }


def everyone(status: int) -> Cells:
    """Public: every actor, signed in or not, gets the same answer."""
    return dict.fromkeys(ACTORS, status)


def signed_in(status: int, *, anonymous: int) -> Cells:
    """Any signed-in user (each sees only their own data), anonymous users are sent to log in."""
    return {**dict.fromkeys(ACTORS, status), ANONYMOUS: anonymous}


def owner_only(status: int = 200, *, anonymous: int) -> Cells:
    """The owner's object: everyone else gets 404, as if it did not exist (ids cannot be probed)."""
    return cells(anonymous=anonymous, owner=status, other_customer=404, staff_without_grant=404, staff_with_grant=404)


def granted_staff_only(status: int = 200, *, anonymous: int) -> Cells:
    """A staff route on a guarded object: customers 403 (not staff), staff without the grant 404."""
    return cells(anonymous=anonymous, owner=403, other_customer=403, staff_without_grant=404, staff_with_grant=status)


def staff_only(status: int = 200, *, anonymous: int) -> Cells:
    """A staff route without an object (lists scoped to grants): customers 403, every staff member allowed."""
    return cells(
        anonymous=anonymous, owner=403, other_customer=403, staff_without_grant=status, staff_with_grant=status
    )


@dataclass(frozen=True)
class Route:
    access: Mapping[str, Cells]  # HTTP method -> actor -> expected status
    obj: str | None = None  # the demo object that fills the URL kwargs
    body: Mapping[str, Builder] = field(default_factory=dict)  # method -> payload builder(scene)
    headers: Mapping[str, Builder] = field(default_factory=dict)  # method -> extra headers builder(scene)
    sample: str | None = None  # glob rows: the concrete route name the matrix calls
    note: str = ""


def _order_payload(scene: Any) -> dict[str, Any]:
    return {
        "lines": [{"product_id": scene.product.pk, "quantity": 1}],
        "shipping_address": {
            "name": "Matrix Buyer",
            "line1": "1 Matrix St",
            "line2": "",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        },
        "note": "",
    }


def _signup_form(scene: Any) -> dict[str, Any]:
    return {
        "username": "newcomer",
        "email": "newcomer@example.com",
        "password": "Sturdy-pass-42",
        "password_confirm": "Sturdy-pass-42",
    }


def _order_edit_form(scene: Any) -> dict[str, Any]:
    from orders.forms import order_details, sign_original

    order = scene.order
    return {**order_details(order), "note": "edited", "version": order.version, "original": sign_original(order)}


def _product_edit_form(scene: Any) -> dict[str, Any]:
    product = scene.product
    return {"name": "Renamed", "description": "", "price": "13.00", "is_active": "on", "version": product.version}


MATRIX_NEW_PASSWORD = "Matrix-sturdy-pass-99"


def _me_as_stored(scene: Any) -> Any:
    """The acting user as the database has them now (a token is made from the stored password and last login;
    the scene's objects in memory remember logins of earlier cells that were rolled back)."""
    from accounts.models import User

    return User.objects.get(pk=scene.me.pk)


def _reset_confirm(scene: Any) -> dict[str, Any]:
    """The acting user's own reset link (anonymous: a link that belongs to nobody)."""
    from accounts.tokens import password_reset_tokens, user_uid

    if scene.me is None:
        return {"uid": "bm9ib2R5", "token": "not-a-token", "new_password": MATRIX_NEW_PASSWORD}
    me = _me_as_stored(scene)
    return {"uid": user_uid(me), "token": password_reset_tokens.make_token(me), "new_password": MATRIX_NEW_PASSWORD}


def _email_verify(scene: Any) -> dict[str, Any]:
    """The acting user's own confirmation link for their current address."""
    from accounts.tokens import email_verification_token

    if scene.me is None:
        return {"token": "not-a-token"}
    me = _me_as_stored(scene)
    return {"token": email_verification_token(user=me, email=me.email)}


def _password_change(scene: Any) -> dict[str, Any]:
    return {"current_password": scene.password, "new_password": MATRIX_NEW_PASSWORD}


def _password_change_form(scene: Any) -> dict[str, Any]:
    return {**_password_change(scene), "new_password_confirm": MATRIX_NEW_PASSWORD}


def _email_change(scene: Any) -> dict[str, Any]:
    return {"email": "moving@example.com", "password": scene.password}


ADMIN = Route(
    sample="admin:index",
    access={"GET": cells(anonymous=302, owner=302, other_customer=302, staff_without_grant=200, staff_with_grant=200)},
    note="staff only via Django admin (admin_view): anonymous users and customers are redirected to log in; "
    "model permissions decide each changelist; guardian object grants are managed there",
)

POLICY: dict[str, Route] = {
    # --- Health and operations --------------------------------------------------------------------------
    "healthz": Route(access={"GET": everyone(200)}, note="liveness, touches nothing"),
    "readyz": Route(access={"GET": everyone(200)}, note="readiness: names failed dependencies, no data"),
    "readyz-serving": Route(
        access={"GET": everyone(200)}, note="orchestrator readiness: the database path only, no data"
    ),
    "metrics": Route(
        access={"GET": everyone(200)},
        note="Prometheus text, counts only; open in development and tests, production needs METRICS_TOKEN "
        "(Bearer, else 401) or METRICS_ALLOWED_IPS, and is 404 with neither (observability/views.py)",
    ),
    # --- API: accounts (anonymous by design: you cannot sign in while signed in) -------------------------
    "api:register": Route(
        access={"POST": everyone(201)},
        body={"POST": lambda scene: {"username": "newcomer", "email": "n@example.com", "password": "Sturdy-pass-42"}},
    ),
    "api:token": Route(
        access={"POST": everyone(200)},
        body={"POST": lambda scene: {"username": scene.owner.username, "password": scene.password}},
    ),
    "api:token-refresh": Route(
        access={"POST": everyone(200)},
        body={"POST": lambda scene: {"refresh": scene.owner_refresh}},
    ),
    "api:logout": Route(
        # Only the token's own user may blacklist it; someone else's refresh token is refused (403).
        access={
            "POST": cells(anonymous=401, owner=204, other_customer=403, staff_without_grant=403, staff_with_grant=403)
        },
        body={"POST": lambda scene: {"refresh": scene.owner_refresh}},
    ),
    # --- API: the caller's own account, and recovery (accounts/account_apis.py) -----------------------------
    "api:me": Route(access={"GET": signed_in(200, anonymous=API_LOGIN)}, note="each caller sees only themself"),
    "api:password-reset": Route(
        # Anyone may ask for anyone's address; the answer is the same 202 for every address (no enumeration)
        # and the link goes only to the address's verified owner.
        access={"POST": everyone(202)},
        body={"POST": lambda scene: {"email": scene.owner.email}},
    ),
    "api:password-reset-confirm": Route(
        # The token is the authorization: each actor presents their own link; a link of nobody's is 400.
        access={"POST": signed_in(204, anonymous=400)},
        body={"POST": _reset_confirm},
    ),
    "api:password-change": Route(
        access={"POST": signed_in(200, anonymous=API_LOGIN)},
        body={"POST": _password_change},
        note="the caller's own password; the current one is required",
    ),
    "api:email-change": Route(access={"POST": signed_in(202, anonymous=API_LOGIN)}, body={"POST": _email_change}),
    "api:email-verify": Route(
        # Confirmed only by the account's own session: another account's token is refused (tests/accounts/).
        access={"POST": signed_in(200, anonymous=API_LOGIN)},
        body={"POST": _email_verify},
    ),
    "api:email-verify-resend": Route(access={"POST": signed_in(202, anonymous=API_LOGIN)}),
    # --- API: catalog (public reads) ---------------------------------------------------------------------
    "api:categories": Route(access={"GET": everyone(200)}),
    "api:products": Route(access={"GET": everyone(200)}),
    "api:product": Route(obj="product", access={"GET": everyone(200)}),
    # --- API: the caller's own orders --------------------------------------------------------------------
    "api:orders": Route(
        access={"GET": signed_in(200, anonymous=API_LOGIN), "POST": signed_in(201, anonymous=API_LOGIN)},
        body={"POST": _order_payload},
        headers={"POST": lambda scene: {"Idempotency-Key": "matrix-1"}},
    ),
    "api:order": Route(
        obj="order",
        access={"GET": owner_only(anonymous=API_LOGIN), "PATCH": owner_only(anonymous=API_LOGIN)},
        body={"PATCH": lambda scene: {"note": "changed by the matrix"}},
        headers={"PATCH": lambda scene: {"If-Match": scene.order.etag}},
    ),
    "api:order-cancel": Route(obj="order", access={"POST": owner_only(anonymous=API_LOGIN)}),
    # --- API: documentation ------------------------------------------------------------------------------
    "api:schema": Route(access={"GET": everyone(200)}),
    "api:docs": Route(access={"GET": everyone(200)}),
    # --- Web: catalog (public, @login_not_required) ------------------------------------------------------
    "shop:home": Route(access={"GET": everyone(200)}),
    "shop:search": Route(access={"GET": everyone(200)}),
    "shop:category": Route(obj="category", access={"GET": everyone(200)}),
    "shop:product": Route(obj="product", access={"GET": everyone(200)}),
    # --- Web: accounts ----------------------------------------------------------------------------------
    "accounts:signup": Route(
        # Signed-in users are sent home; nobody signs up twice in one session.
        access={"GET": signed_in(302, anonymous=200), "POST": everyone(302)},
        body={"POST": _signup_form},
    ),
    "accounts:login": Route(
        # PUT: Django's LoginView answers it like POST, but a PUT carries no form data, so it is refused.
        access={
            "GET": signed_in(302, anonymous=200),
            "POST": everyone(302),
            "PUT": signed_in(302, anonymous=400),
        },
        body={"POST": lambda scene: {"username": scene.owner.username, "password": scene.password}},
    ),
    "accounts:logout": Route(access={"POST": everyone(302)}, note="POST only; anonymous: login redirect"),
    "accounts:account": Route(access={"GET": signed_in(200, anonymous=WEB_LOGIN)}),
    "accounts:password-change": Route(
        access={"GET": signed_in(200, anonymous=WEB_LOGIN), "POST": signed_in(302, anonymous=WEB_LOGIN)},
        body={"POST": _password_change_form},
    ),
    "accounts:email-change": Route(
        access={"GET": signed_in(200, anonymous=WEB_LOGIN), "POST": signed_in(302, anonymous=WEB_LOGIN)},
        body={"POST": _email_change},
    ),
    "accounts:email-verify-resend": Route(access={"POST": signed_in(302, anonymous=WEB_LOGIN)}),
    "accounts:email-verify": Route(
        # The matrix's token (the owner's pk) is no link at all: 400 for everyone signed in; the real links are
        # tested in tests/accounts/test_verification.py (another account's link is refused there too).
        obj="owner",
        access={"GET": signed_in(400, anonymous=WEB_LOGIN), "POST": signed_in(400, anonymous=WEB_LOGIN)},
    ),
    # Password reset, signed out (@login_not_required): the same pages for every address.
    "accounts:password-reset": Route(
        access={"GET": everyone(200), "POST": everyone(302)},
        body={"POST": lambda scene: {"email": scene.owner.email}},
    ),
    "accounts:password-reset-sent": Route(access={"GET": everyone(200)}),
    "accounts:password-reset-confirm": Route(
        # A made-up link (uid and token from the owner's pk) is a 400 page for everyone; PUT is answered like
        # POST by Django's FormView. Real links: tests/accounts/test_password_reset.py.
        obj="owner",
        access={"GET": everyone(400), "POST": everyone(400), "PUT": everyone(400)},
    ),
    "accounts:password-reset-complete": Route(access={"GET": everyone(200)}),
    # --- Development only: the mail the local SMTP sink received (404 in production) ---------------------
    "mail:sink-list": Route(
        access={"GET": everyone(200)},
        note="development and test only, and only for a browser on this machine (mail/views.py); 404 in production",
    ),
    "mail:sink-detail": Route(
        obj="owner",
        access={"GET": everyone(404)},
        note="a name the sink did not write is 404 (tests/mail/test_sink.py)",
    ),
    # --- Web: the caller's own cart (no cart id in any URL: the cart is always request.user's) -----------
    "cart:detail": Route(access={"GET": signed_in(200, anonymous=WEB_LOGIN)}),
    "cart:add": Route(
        obj="product",
        access={"GET": signed_in(302, anonymous=WEB_LOGIN), "POST": signed_in(303, anonymous=WEB_LOGIN)},
        body={"POST": lambda scene: {"quantity": 1}},
    ),
    "cart:update": Route(
        obj="product",
        access={"POST": signed_in(303, anonymous=WEB_LOGIN)},
        body={"POST": lambda scene: {"quantity": 5}},
    ),
    "cart:remove": Route(obj="product", access={"POST": signed_in(303, anonymous=WEB_LOGIN)}),
    "cart:checkout": Route(
        # The empty form is refused (400) for everyone signed in: the point here is who reaches it.
        access={"GET": signed_in(200, anonymous=WEB_LOGIN), "POST": signed_in(400, anonymous=WEB_LOGIN)},
    ),
    # --- Web: the caller's own orders (someone else's order id is a 404) ---------------------------------
    "orders:list": Route(access={"GET": signed_in(200, anonymous=WEB_LOGIN)}),
    "orders:detail": Route(obj="order", access={"GET": owner_only(anonymous=WEB_LOGIN)}),
    "orders:status": Route(obj="order", access={"GET": owner_only(anonymous=WEB_LOGIN)}),
    "orders:edit": Route(
        obj="order",
        access={"GET": owner_only(anonymous=WEB_LOGIN), "POST": owner_only(303, anonymous=WEB_LOGIN)},
        body={"POST": _order_edit_form},
    ),
    "orders:cancel": Route(
        obj="order",
        access={"GET": owner_only(anonymous=WEB_LOGIN), "POST": owner_only(303, anonymous=WEB_LOGIN)},
    ),
    # --- Staff API: fulfilment (orders of granted centres) and catalog (products of granted categories) -----
    "api:staff-orders": Route(access={"GET": staff_only(anonymous=API_LOGIN)}, note="each sees only granted centres"),
    "api:staff-order": Route(obj="order", access={"GET": granted_staff_only(anonymous=API_LOGIN)}),
    "api:staff-order-fulfil": Route(obj="paid_order", access={"POST": granted_staff_only(anonymous=API_LOGIN)}),
    "api:staff-products": Route(access={"GET": staff_only(anonymous=API_LOGIN)}),
    "api:staff-product": Route(
        obj="product",
        access={
            "GET": granted_staff_only(anonymous=API_LOGIN),
            "PATCH": granted_staff_only(anonymous=API_LOGIN),
        },
        body={"PATCH": lambda scene: {"name": "Renamed by the matrix"}},
        headers={"PATCH": lambda scene: {"If-Match": f'"{scene.product.version}"'}},
    ),
    # --- Staff pages (/staff/): customers 403, staff see only what they were granted ---------------------
    "staff:home": Route(access={"GET": staff_only(anonymous=WEB_LOGIN)}),
    "staff:orders": Route(access={"GET": staff_only(anonymous=WEB_LOGIN)}),
    "staff:order": Route(obj="order", access={"GET": granted_staff_only(anonymous=WEB_LOGIN)}),
    "staff:order-fulfil": Route(obj="paid_order", access={"POST": granted_staff_only(303, anonymous=WEB_LOGIN)}),
    "staff:products": Route(access={"GET": staff_only(anonymous=WEB_LOGIN)}),
    "staff:product": Route(
        obj="product",
        access={
            "GET": granted_staff_only(anonymous=WEB_LOGIN),
            "POST": granted_staff_only(303, anonymous=WEB_LOGIN),
        },
        body={"POST": _product_edit_form},
    ),
    # --- Django admin: its login page (throttled like the shop's), then one rule for the whole site -------
    "admin-login": Route(
        # Staff are sent on to the admin; everyone else gets the form. A customer's own credentials are no
        # admin login: the form comes back with its error (200), for every actor.
        access={
            "GET": cells(anonymous=200, owner=200, other_customer=200, staff_without_grant=302, staff_with_grant=302),
            "POST": everyone(200),
        },
        body={"POST": lambda scene: {"username": scene.owner.username, "password": scene.password}},
    ),
    "admin:*": ADMIN,
    "admin/*": ADMIN,
}


def policy_for(key: str) -> Route | None:
    """The row for a route key: an exact row first, else the first glob row that matches."""
    if key in POLICY:
        return POLICY[key]
    for pattern, route in POLICY.items():
        if "*" in pattern and fnmatchcase(key, pattern):
            return route
    return None
