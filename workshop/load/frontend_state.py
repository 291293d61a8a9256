"""frontend-state: a customer edits one order in two tabs opened from the same state, and saves in both.

Tab A changes the note, tab B the city; each submits the whole form as it was rendered. Where the last write
wins, A's note is gone although A was told "saved". (The never-resolving spinner is the browser script's part:
workshop/browser.py.)
"""

from __future__ import annotations

import re
from html import unescape
from http.cookiejar import Cookie
from urllib.parse import urlparse

from locust import task

from workshop.load.common import LEDGER, SideUser

_INPUT = re.compile(r"<input\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r'(\w[\w-]*)\s*=\s*"([^"]*)"')
FIELDS = {"note": "note", "city": "shipping_city"}


def form_fields(html: str) -> dict[str, str]:
    """The form's inputs with the values it was rendered with (hidden ones included: token, version)."""
    fields: dict[str, str] = {}
    for tag in _INPUT.findall(html):
        attrs = {name.lower(): unescape(value) for name, value in _ATTR.findall(tag)}
        if "name" in attrs and attrs.get("type") != "submit":
            fields[attrs["name"]] = attrs.get("value", "")
    for name, value in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.DOTALL):
        fields[name] = unescape(value)
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', html, re.DOTALL):
        chosen = re.search(r'<option[^>]*value="([^"]*)"[^>]*selected', body)
        fields[name] = unescape(chosen.group(1)) if chosen else ""
    return fields


class EditorUser(SideUser):
    abstract = True

    def on_start(self) -> None:
        host = str(urlparse(self.host or "").hostname or "127.0.0.1")
        cookie = Cookie(
            0, "sessionid", self.account["session"], None, False, host, False, False, "/", True, False, None, True,
            None, None, {},
        )  # fmt: skip
        self.client.cookiejar.set_cookie(cookie)
        self.orders = list(self.account["orders"])

    def edit_path(self, order_id: int) -> str:
        return self.twin_path(f"orders/{order_id}/edit/") if self.side == "twin" else f"/orders/{order_id}/edit/"

    def save(self, order_id: int, form: dict[str, str], field: str, value: str) -> None:
        answer = self.send(
            "POST",
            self.edit_path(order_id),
            name="POST edit",
            headers={"Accept": "text/html", "Referer": (self.host or "") + self.edit_path(order_id)},
            data={**form, field: value},
        )
        # Told "saved": the twin answers {"ok": true}; the shop redirects to the order page.
        accepted = answer.status == 200 if self.side == "twin" else answer.status in (302, 303)
        LEDGER.write(
            "edit",
            self.side,
            order_id=order_id,
            field=FIELDS[field],
            value=value,
            accepted=accepted,
            status=answer.status,
        )
        self.polite_wait(answer)

    @task
    def edit_in_two_tabs(self) -> None:
        if not self.orders:
            return
        order_id = self.orders.pop(0)
        tab_a = form_fields(
            self.send("GET", self.edit_path(order_id), name="GET edit", headers={"Accept": "text/html"}).text
        )
        tab_b = form_fields(
            self.send("GET", self.edit_path(order_id), name="GET edit", headers={"Accept": "text/html"}).text
        )
        if "csrfmiddlewaretoken" not in tab_a or "csrfmiddlewaretoken" not in tab_b:
            return
        self.save(order_id, tab_a, "note", f"tab A {self.rng.randrange(10**6)}")
        self.save(order_id, tab_b, "city", f"Tab B {self.rng.randrange(10**6)}")
