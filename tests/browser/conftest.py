"""Playwright fixtures for the browser tests (pytest-playwright is deliberately not used: these are small).

Debian's Chromium (`deploy/scripts/stack.sh packages chromium`, called by `make pytest`) runs headless against
pytest-django's live server and the real database (transactional: the server thread sees committed rows).
Nothing is downloaded. A failing test leaves a screenshot of every open page and a Playwright trace under
test-artifacts/failures/<test>/ (open it with `playwright show-trace`).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from zeal import zeal_ignore

from accounts.models import User
from cart.services import cart_add_item
from shop.models import Category, Product
from tests.factories import CategoryFactory, ProductFactory, UserFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
ADDRESS = {"name": "Alice Liddell", "line1": "1 Rabbit Hole", "city": "Berlin", "postal_code": "10115", "country": "DE"}
# Generous waits for a shared two-core machine; the app's own bounds are what the tests check, not the clock.
WAIT_MS = 15_000


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `deploy/scripts/stack.sh packages chromium` (make pytest does)")
    # Playwright's sync API drives an asyncio loop on this thread, which Django's async-safety guard mistakes
    # for async code; the ORM calls in these tests are plain synchronous set-up and assertions.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield launched
            launched.close()


def session_cookie(user: User) -> str:
    client = Client()
    with zeal_ignore():
        client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client.cookies[settings.SESSION_COOKIE_NAME].value


ContextFactory = Callable[..., BrowserContext]


@pytest.fixture
def new_context(browser: Browser, live_server: Any, request: pytest.FixtureRequest) -> Iterator[ContextFactory]:
    """Make browser contexts (one per "device"), signed in as `user` when given; traced, closed at the end."""
    contexts: list[BrowserContext] = []

    def make(user: User | None = None, **options: Any) -> BrowserContext:
        options.setdefault("viewport", {"width": 1280, "height": 900})
        context = browser.new_context(base_url=live_server.url, **options)
        context.set_default_timeout(WAIT_MS)
        context.tracing.start(screenshots=True, snapshots=True)
        if user is not None:
            context.add_cookies(
                [{"name": settings.SESSION_COOKIE_NAME, "value": session_cookie(user), "url": live_server.url}]
            )
        contexts.append(context)
        return context

    yield make

    report = getattr(request.node, "report_call", None)
    failed = report is not None and report.failed
    failure_dir = ARTIFACTS / "failures" / request.node.name
    for index, context in enumerate(contexts):
        if failed:
            failure_dir.mkdir(parents=True, exist_ok=True)
            for page_index, page in enumerate(context.pages):
                page.screenshot(path=failure_dir / f"context{index}-page{page_index}.png", full_page=True)
            context.tracing.stop(path=failure_dir / f"trace-context{index}.zip")
        else:
            context.tracing.stop()
        context.close()


@pytest.fixture
def page(new_context: ContextFactory, alice: User) -> Page:
    """One tab, signed in as alice."""
    return new_context(alice).new_page()


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # a sticky header would otherwise be painted mid-page
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


@pytest.fixture(autouse=True)
def _committed_rows(transactional_db: None) -> None:
    """Browser tests need committed rows: the live server answers from another thread and connection."""


@pytest.fixture
def alice(transactional_db: None) -> User:
    return UserFactory.create(username="alice", first_name="Alice", last_name="Liddell")


@pytest.fixture
def tea(transactional_db: None) -> Category:
    return CategoryFactory.create(name="Tea", slug="tea")


@pytest.fixture
def sencha(tea: Category) -> Product:
    return ProductFactory.create(
        category=tea,
        name="Sencha",
        slug="sencha",
        sku="TEA-1",
        price=Decimal("12.50"),
        stock_on_hand=20,
        description="A grassy Japanese green tea, steamed within hours of picking.",
    )


@pytest.fixture
def earl_grey(tea: Category) -> Product:
    return ProductFactory.create(
        category=tea, name="Earl Grey", slug="earl-grey", sku="TEA-2", price=Decimal("9.90"), stock_on_hand=20
    )


@pytest.fixture
def alice_cart(alice: User, sencha: Product) -> None:
    with zeal_ignore():
        cart_add_item(user=alice, product_id=sencha.pk, quantity=2)


def open_checkout(page: Page) -> None:
    """Go to checkout and fill in the address, as a shopper would."""
    page.goto("/cart/checkout/")
    for field, value in ADDRESS.items():
        page.fill(f"#id_{field}", value)
