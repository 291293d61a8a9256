"""Web buyers: a session sign-in, add to cart and checkout through the HTML forms, CSRF token and all.

The checkout form carries its own idempotency key (a hidden field), so a double-clicked "Place order" must
land on one order; both submissions are redirected (303) to the same /orders/<id>/ page.
"""

from __future__ import annotations

import random
import re
import urllib.request
from html import unescape
from http.cookiejar import Cookie
from typing import Any
from urllib.parse import urlparse

import gevent
from locust import FastHttpUser, between, task
from locust.env import Environment

from loadtests.buyers import report_violation
from loadtests.common import ADDRESSES, CATALOG, LEDGER, PASSWORD_SIGNIN_SHARE, Result, call

_INPUT = re.compile(r"<input\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r'(\w[\w-]*)\s*=\s*"([^"]*)"')
_ORDER_URL = re.compile(r"/orders/(\d+)/")


def form_fields(html: str, action: str | None = None) -> dict[str, str]:
    """Hidden and prefilled inputs of the form posting to `action` (or of the whole page)."""
    if action is not None:
        start = html.find(f'action="{action}"')
        if start == -1:
            return {}
        html = html[start : html.find("</form>", start)]
    fields: dict[str, str] = {}
    for tag in _INPUT.findall(html):
        attrs = {name.lower(): unescape(value) for name, value in _ATTR.findall(tag)}
        if "name" in attrs:
            fields[attrs["name"]] = attrs.get("value", "")
    return fields


def discover_web(environment: Environment) -> None:
    """Switch the HTML tasks on only when the target serves the storefront (an API-only deploy skips them)."""
    host = (environment.host or "").rstrip("/")
    CATALOG.web_pages = _status(f"{host}/") == 200
    CATALOG.web_checkout = CATALOG.web_pages and _status(f"{host}/accounts/login/") == 200


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except OSError as error:
        return int(getattr(error, "code", 0) or 0)


class WebBuyer(FastHttpUser):
    """Signs in with the login form and buys through cart and checkout pages; some double-click, some leave."""

    weight = 2
    wait_time = between(2, 6)
    network_timeout = 30.0
    connection_timeout = 10.0
    # Never follow redirects: the 302/303 after a form post is the answer this user checks. (Not per request:
    # locust's allow_redirects=False flips a flag shared by concurrent requests, so a double click could
    # follow a redirect it was told not to.)
    max_redirects = 0
    username = ""
    signed_in = False

    def on_start(self) -> None:
        self.signed_in = False
        if not CATALOG.web_checkout or not CATALOG.buyers:
            return
        # Arrive on the home page and look around before doing anything that needs an account.
        call(self, "GET", "/", name="GET / (html)", expect={"200"})
        gevent.sleep(random.uniform(1, 6))
        if random.random() > PASSWORD_SIGNIN_SHARE and CATALOG.web_sessions:
            self.resume_session()
        if not self.signed_in:
            self.log_in()

    def resume_session(self) -> None:
        """A returning visitor: the browser still holds yesterday's session cookie."""
        self.username, session_id = CATALOG.web_sessions.popleft()
        host = urlparse(self.host).hostname or "127.0.0.1"
        self.client.cookiejar.set_cookie(
            Cookie(
                0,
                "sessionid",
                session_id,
                None,
                False,
                host,
                False,
                False,
                "/",
                True,
                False,
                None,
                True,
                None,
                None,
                {},
            ),
        )
        cart = call(self, "GET", "/cart/", name="GET /cart/ (html)", expect={"200", "302"})
        # 302 to the login page: the session did not survive (other key). A 503 (load shed) says nothing about it.
        self.signed_in = cart.status != 302

    def log_in(self) -> None:
        self.username = CATALOG.account("buyers")
        # 302: already signed in (the login page sends a signed-in customer on), e.g. after a shed page.
        login = call(self, "GET", "/accounts/login/", name="GET /accounts/login/ (html)", expect={"200", "302"})
        if login.status == 302:
            self.signed_in = True
            return
        token = form_fields(login.text).get("csrfmiddlewaretoken")
        if not token:
            return
        result = call(
            self,
            "POST",
            "/accounts/login/",
            name="POST /accounts/login/ (html)",
            expect={"302", "303"},
            data={"username": self.username, "password": CATALOG.password, "csrfmiddlewaretoken": token},
        )
        self.signed_in = result.status in (302, 303)

    @task
    def shop_and_checkout(self) -> None:
        if not self.signed_in:
            if CATALOG.web_checkout:
                self.log_in()
            return
        for product_id in random.sample(CATALOG.product_ids, k=min(random.randint(1, 2), len(CATALOG.product_ids))):
            self.add_to_cart(product_id)
        page = call(self, "GET", "/cart/checkout/", name="GET /cart/checkout/ (html)", expect={"200"})
        form = form_fields(page.text, action="/cart/checkout/")
        if "idempotency_key" not in form:
            return  # empty cart, or a cart with problems: nothing to submit
        if random.random() < 0.1:
            return  # abandons at the checkout page; the cart stays for next time
        address = random.choice(ADDRESSES)
        form.update({name: address[name] for name in ("name", "line1", "line2", "city", "postal_code", "country")})
        form["note"] = "web order"
        if random.random() < 0.25:
            # Double click on "Place order": two identical POSTs with one form key at the same instant.
            pair = [gevent.spawn(self.submit, form) for _ in range(2)]
            gevent.joinall(pair)
            results = [g.value for g in pair if g.value is not None]
        else:
            results = [self.submit(form)]
        order_ids = {match.group(1) for r in results if (match := _ORDER_URL.search(r.headers.get("location", "")))}
        if len(order_ids) > 1:
            report_violation(
                self, "CHECK one order per checkout form", f"form key {form['idempotency_key']}: {order_ids}"
            )
        for order_id in order_ids:
            call(self, "GET", f"/orders/{order_id}/", name="GET /orders/[id]/ (html)", expect={"200"})

    def add_to_cart(self, product_id: int) -> None:
        slug = CATALOG.product_slugs.get(product_id)
        if not slug:
            return
        page = call(self, "GET", f"/p/{slug}/", name="GET /p/[slug]/ (html)", expect={"200"})
        form = form_fields(page.text, action=f"/cart/add/{product_id}/")
        if "csrfmiddlewaretoken" not in form:
            return  # sold out: no buy form
        form["quantity"] = str(random.randint(1, 2))
        call(
            self,
            "POST",
            f"/cart/add/{product_id}/",
            name="POST /cart/add/[id]/ (html)",
            expect={"303", "302"},
            data=form,
        )

    def submit(self, form: dict[str, Any]) -> Result:
        # 409: stock ran out or the cart changed while the page was open; the page says so, nothing is ordered.
        result = call(
            self, "POST", "/cart/checkout/", name="POST /cart/checkout/ (html)", expect={"303", "409"}, data=form
        )
        match = _ORDER_URL.search(result.headers.get("location", ""))
        if result.status == 303 and match:
            order = {"id": int(match.group(1)), "number": None, "lines": []}
            LEDGER.order_accepted(
                username=self.username,
                key=form["idempotency_key"],
                order=order,
                via="web",
                replayed="placed=again" in result.headers.get("location", ""),
            )
            CATALOG.note_order(int(match.group(1)), self.username)
        return result
