"""The Content-Security-Policy holds in a real browser: no page the shop serves needs an inline script or style.

The policy (config/settings.py, django-csp) allows only the shop's own scripts and styles. A page that
depended on an inline one would break silently in a browser; here every violation the browser reports fails
the test. The Swagger UI page is the one that needed work: drf-spectacular's split view serves its init script
as a file, and templates/drf_spectacular/swagger_ui.html moves its inline <style> into static/css/.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from accounts.models import User
from shop.models import Product
from tests.browser.conftest import ContextFactory

pytestmark = pytest.mark.browser

# Set on the page before anything loads: the browser's own report of every blocked resource or inline code.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""


def violations(page: Page) -> list[str]:
    found: list[str] = page.evaluate("window.__cspViolations")
    return found


def test_the_swagger_ui_renders_every_operation_under_the_policy(new_context: ContextFactory) -> None:
    page = new_context().new_page()
    page.add_init_script(RECORD_VIOLATIONS)
    console_errors: list[str] = []
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    response = page.goto("/api/v1/docs/")
    assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() >= 18  # every operation of the document is listed
    page.locator(".opblock-summary").first.click()  # an operation opens (the UI's scripts run)
    expect(page.locator(".opblock-body").first).to_be_visible()
    assert violations(page) == []
    assert [error for error in console_errors if "Content Security Policy" in error] == []


def test_the_shop_and_the_admin_need_nothing_inline(new_context: ContextFactory, alice: User, sencha: Product) -> None:
    page = new_context(alice).new_page()
    page.add_init_script(RECORD_VIOLATIONS)
    for url in ["/", "/p/sencha/", "/cart/", "/cart/checkout/", "/orders/", "/admin/login/"]:
        page.goto(url)
        assert violations(page) == [], url
