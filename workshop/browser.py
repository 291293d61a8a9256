"""frontend-state's "requests that never resolved", measured in a real browser (Debian's Chromium, Playwright).

For each side at the same time: open the edit page, change the note, press Save, and let the request hang: the
form is sent to a black hole, a local socket that accepts the connection and never answers (as on a train, or
behind a stuck proxy). Then watch the page for `patience_s`: it resolved if it told the user something (a status
or an alert) or let them act again. The twin's spinner spins on; the shop's busy form says "still working" after
its bound (static/js/shop.js). Nothing is downloaded: the browser is /usr/bin/chromium, as in tests/browser/.

The page reports its own state on the console (a watcher injected before the click): while a form's navigation
is pending, Playwright cannot evaluate in the page, but the page's console messages still arrive.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from playwright.sync_api import BrowserContext, ConsoleMessage, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-sync"]

# Reports {busy, resolved} four times a second. Busy: the submit button is disabled. Resolved: the page told
# the user something, or gave them the button back with no spinner turning.
WATCH_JS = """() => {
  const report = () => {
    const form = document.querySelector("main form[method=post]");
    const button = form && form.querySelector("button[type=submit]");
    const told = !!form && Array.from(form.querySelectorAll("[data-request-status], #message, [role=alert]"))
      .some((el) => el.textContent.trim().length > 0);
    const spinning = !!form && Array.from(form.querySelectorAll(".spinner"))
      .some((el) => !el.hidden && el.offsetParent !== null);
    const busy = !!button && button.disabled;
    console.log("workshop-state " + JSON.stringify({ busy: busy, resolved: told || (!busy && !spinning) }));
  };
  window.setInterval(report, 250);
}"""


@contextlib.contextmanager
def black_hole() -> Iterator[str]:
    """A URL whose server accepts every connection and never sends a byte back."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = server.accept()
                held.append(connection)

    threading.Thread(target=accept, name="black-hole", daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/never-answers"
    finally:
        server.close()
        for connection in held:
            connection.close()


class PageState:
    def __init__(self, page: Page) -> None:
        self.went_busy = False
        self.resolved_after_busy = False
        page.on("console", self.on_console)

    def on_console(self, message: ConsoleMessage) -> None:
        if not message.text.startswith("workshop-state "):
            return
        state = json.loads(message.text.removeprefix("workshop-state "))
        self.went_busy = self.went_busy or bool(state["busy"])
        if self.went_busy and state["resolved"]:
            self.resolved_after_busy = True


def spinner_check(
    *,
    pages: dict[str, str],
    cookies: dict[str, str],
    hosts: dict[str, str],
    attempts: int,
    patience_s: float,
    record: Callable[..., None],
    bound_ms: int | None = None,
) -> dict[str, int]:
    """`pages[side]`: the edit page's path; `cookies[side]`: a session id. Returns unresolved counts per side.

    `bound_ms` shortens a busy form's bound the way the shop's script allows (data-bound-ms), so a CI run waits on
    the page's own timer for seconds instead of the default 15; a page without a bound ignores it.
    """
    unresolved = dict.fromkeys(pages, 0)
    with sync_playwright() as playwright, black_hole() as hole:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        contexts: dict[str, BrowserContext] = {}
        try:
            for side, host in hosts.items():
                context = browser.new_context(base_url=host)
                context.add_cookies([{"name": "sessionid", "value": cookies[side], "url": host}])
                context.set_default_timeout(30_000)
                contexts[side] = context
            for attempt in range(attempts):
                opened: dict[str, tuple[Page, PageState]] = {}
                for side, context in contexts.items():
                    page = context.new_page()
                    page.goto(pages[side])
                    page.fill("main form[method=post] [name=note]", f"browser attempt {attempt}")
                    page.eval_on_selector("main form[method=post]", "(form, url) => { form.action = url; }", hole)
                    if bound_ms is not None:
                        page.eval_on_selector(
                            "main form[method=post]", "(form, ms) => { form.dataset.boundMs = String(ms); }", bound_ms
                        )
                    state = PageState(page)
                    page.evaluate(WATCH_JS)
                    # A click that starts a navigation would wait for it; this one never ends, by design.
                    page.click("main form[method=post] button[type=submit]", no_wait_after=True)
                    opened[side] = (page, state)
                deadline = time.monotonic() + patience_s
                while time.monotonic() < deadline and not all(
                    state.resolved_after_busy for _, state in opened.values()
                ):
                    next(iter(opened.values()))[0].wait_for_timeout(250)  # lets the console events in
                for side, (page, state) in opened.items():
                    if not state.resolved_after_busy:
                        unresolved[side] += 1
                    record(
                        "spinner", side, attempt=attempt, resolved=state.resolved_after_busy, went_busy=state.went_busy
                    )
                    page.close()
        finally:
            for context in contexts.values():
                context.close()
            browser.close()
    return unresolved


def edit_pages(fixture: dict[str, Any], twin_prefix: str) -> tuple[dict[str, str], dict[str, str]]:
    """The browser account's pages and session per side (its orders are reserved for the browser)."""
    pages: dict[str, str] = {}
    cookies: dict[str, str] = {}
    for side, entry in fixture["sides"].items():
        account = entry["browser"][0]
        order_id = account["orders"][0]
        pages[side] = f"{twin_prefix}orders/{order_id}/edit/" if side == "twin" else f"/orders/{order_id}/edit/"
        cookies[side] = account["session"]
    return pages, cookies
