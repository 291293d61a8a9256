"""Defect 4 of issue 12: input from a stranger that answered 500 (the HTML debug page under `make run`).

Each example that was found is checked here against the RULE, over every operation it applies to (read from
the OpenAPI document, not from a list): no input produces a 5xx, and an error the API gives is problem+json.
The fuzzers (test_api_schemathesis.py, test_hostile_crawl.py) look for the cases nobody listed.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from axes.models import AccessAttempt
from django.core.signals import got_request_exception
from django.test import Client, override_settings
from rest_framework import exceptions as drf_exceptions
from rest_framework.exceptions import APIException
from rest_framework_simplejwt.tokens import RefreshToken

from core.exceptions import api_exception_handler
from orders.models import Order
from tests.authorization.scene import Scene
from tests.capacity.infra import AppServer
from tests.factories import UserFactory
from tests.fuzz.conftest import live_app_env
from tests.fuzz.junk import JUNK
from tests.fuzz.urls import CRASH_MESSAGE
from tests.observability.sentry_receiver import SentryReceiver, exception_types

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
TAMPERED_CURSORS = {
    # The example is base64 of `p=abc`; with a "!" it is neither an id nor a slug (categories page by
    # slug, where `abc` is a fine position).
    "p=abc!": base64.b64encode(b"p=abc!").decode(),
    "p= NUL": base64.b64encode(b"p=\x00").decode(),
    "p= a number past bigint, a slug past its length": base64.b64encode(b"p=" + b"9" * 200).decode(),
    "r=x": base64.b64encode(b"r=x").decode(),
    "o=-1": base64.b64encode(b"o=-1").decode(),
    "not base64": "%%%",
    "base64 of bytes that are not ASCII": base64.b64encode(b"\xff\xfe").decode(),
}


def _document() -> dict[str, Any]:
    return yaml.safe_load(Client().get("/api/v1/schema/").content)


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method.upper(), operation


DOCUMENT = _document()
WITH_BODY = [(path, method) for path, method, operation in _operations(DOCUMENT) if "requestBody" in operation]
LISTS = [
    path
    for path, method, operation in _operations(DOCUMENT)
    if method == "GET" and any(parameter["name"] == "cursor" for parameter in operation.get("parameters", []))
]


def _client_for(path: str, scene: Scene) -> Client:
    """Staff paths as staff with the grant, everything else as alice: the request gets past authorization."""
    user = scene.staff_with_grant if path.startswith("/api/v1/staff/") else scene.owner
    return Client(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")


def _url(path: str, scene: Scene) -> str:
    return path.replace("{order_id}", str(scene.order.pk)).replace("{product_id}", str(scene.product.pk))


def assert_problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code, body
    return body


def test_the_document_lists_the_operations_these_tests_walk() -> None:
    assert ("/api/v1/orders/", "POST") in WITH_BODY
    assert "/api/v1/staff/orders/" in LISTS and "/api/v1/categories/" in LISTS


# --- A body of a few thousand nested `[` (RecursionError in the JSON decoder) ---------------------------------


@pytest.mark.parametrize(("path", "method"), WITH_BODY, ids=[f"{method} {path}" for path, method in WITH_BODY])
def test_deeply_nested_json_is_a_400_on_every_operation_with_a_body(path: str, method: str, scene: Scene) -> None:
    response = _client_for(path, scene).generic(
        method,
        _url(path, scene),
        "[" * 5000,
        content_type="application/json",
        headers={"Idempotency-Key": "nested", "If-Match": '"1"'},
    )
    assert_problem(response, 400, "too_deep")


def test_nesting_just_inside_the_bound_is_parsed_and_judged_by_the_serializer(scene: Scene) -> None:
    body = json.dumps({"username": "x", "password": "y", "deep": json.loads("[" * 30 + "]" * 30)})
    response = Client().post("/api/v1/auth/token/", body, content_type="application/json")
    assert response.status_code == 401  # wrong credentials: the nesting itself was fine


def test_a_lone_surrogate_is_a_400_not_a_psycopg_error(scene: Scene) -> None:
    order = {
        "lines": [{"product_id": scene.product.pk, "quantity": 1}],
        "shipping_address": {"name": "A", "line1": "1 Main St", "city": "Berlin", "postal_code": "1", "country": "DE"},
        "note": "PLACEHOLDER",
    }
    # DRF's CharField refuses surrogates itself; the parser refuses them before any field (and in keys, and in
    # fields that are not CharFields), so none reaches psycopg, which cannot encode them.
    body = json.dumps(order).replace("PLACEHOLDER", "\\ud800")
    client = _client_for("/api/v1/orders/", scene)
    response = client.post("/api/v1/orders/", body, content_type="application/json", headers={"Idempotency-Key": "s"})
    assert_problem(response, 400, "invalid_characters")
    assert not Order.objects.filter(idempotency_key="s").exists()


# --- A tampered pagination cursor, on every list, staff lists included -----------------------------------------


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("cursor", list(TAMPERED_CURSORS.values()), ids=list(TAMPERED_CURSORS))
def test_a_tampered_cursor_is_a_404_problem_on_every_list(path: str, cursor: str, scene: Scene) -> None:
    response = _client_for(path, scene).get(path, {"cursor": cursor})
    assert_problem(response, 404, "invalid_cursor")


@pytest.mark.parametrize("path", LISTS)
def test_the_cursors_the_api_hands_out_still_work(path: str, scene: Scene) -> None:
    client = _client_for(path, scene)
    first = client.get(path, {"page_size": 1})
    assert first.status_code == 200
    following = first.json()["next"]
    if following:
        assert client.get(following).status_code == 200


# --- NUL in the web search, and anywhere else the shop reads text ------------------------------------------------


def test_a_nul_in_the_web_search_is_the_shops_400_page(scene: Scene) -> None:
    response = Client().get("/search/", {"q": "sen\x00cha"})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert "NUL" in response.content.decode()


@pytest.mark.parametrize(
    "where",
    ["query", "form", "header", "path"],
)
def test_a_nul_is_refused_wherever_it_is_sent(where: str, scene: Scene) -> None:
    client = _client_for("/api/v1/orders/", scene)
    if where == "query":
        response = client.get("/api/v1/products/", {"q": "a\x00"})
    elif where == "form":
        response = Client().post("/accounts/login/", {"username": "alice\x00", "password": "x"})
    elif where == "header":
        response = client.post(
            "/api/v1/orders/", {}, content_type="application/json", headers={"Idempotency-Key": "k\x00"}
        )
    else:
        response = Client().get("/p/sen%00cha/")
    assert response.status_code in {400, 404}, response.content[:200]
    if where != "form":
        assert response["Content-Type"] in {PROBLEM, "text/html; charset=utf-8"}


# --- The token endpoints ------------------------------------------------------------------------------------------


def test_a_username_longer_than_the_column_is_a_400_and_writes_nothing(scene: Scene) -> None:
    attempts = AccessAttempt.objects.count()
    body = json.dumps({"username": "a" * 300, "password": "whatever"})
    response = Client().post("/api/v1/auth/token/", body, content_type="application/json")
    assert_problem(response, 400, "invalid")
    assert AccessAttempt.objects.count() == attempts  # django-axes never saw it (its column is varchar(255))


def test_refreshing_the_token_of_a_deleted_user_is_a_401(scene: Scene) -> None:
    leaving = UserFactory.create(username="leaving")
    refresh = str(RefreshToken.for_user(leaving))
    leaving.delete()
    response = Client().post("/api/v1/auth/token/refresh/", {"refresh": refresh}, content_type="application/json")
    assert_problem(response, 401)


def test_junk_in_authorization_is_a_401_problem_with_a_sentence(scene: Scene) -> None:
    response = Client().get("/api/v1/orders/", headers={"Authorization": "Bearer a.b.c"})
    body = assert_problem(response, 401)
    assert not body["detail"].startswith("{")  # simplejwt's dict, flattened to its message


def test_a_request_id_with_a_newline_gets_a_fresh_id_not_a_500(scene: Scene) -> None:
    response = Client().get("/healthz", headers={"X-Request-ID": "abc\n"})
    assert response.status_code == 200
    assert response["X-Request-ID"] != "abc\n"


# --- The last resort: a real bug, under DEBUG=true as `make run` has it -------------------------------------------


@pytest.fixture
def crash_reports() -> Iterator[list[Any]]:
    """What Sentry's Django integration listens to: got_request_exception, sent by Django's own 500 path."""
    reports: list[Any] = []

    def record(sender: Any, request: Any = None, **kwargs: Any) -> None:
        reports.append(request)

    got_request_exception.connect(record)
    yield reports
    got_request_exception.disconnect(record)


@pytest.mark.urls("tests.fuzz.urls")
@override_settings(DEBUG=True)
def test_under_debug_an_api_crash_is_a_problem_json_500_that_is_still_logged_and_reported(
    crash_reports: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = Client(raise_request_exception=False).get("/api/v1/_crash/")
    body = assert_problem(response, 500, "server_error")
    assert CRASH_MESSAGE not in json.dumps(body)  # no traceback, no exception text for the stranger
    assert response["X-Request-ID"]
    assert len(crash_reports) == 1  # Sentry's hook fired
    assert any(record.exc_info and CRASH_MESSAGE in str(record.exc_info[1]) for record in caplog.records)


# The DRF exceptions whose status says which one it is (400 and 401 each have two causes, told by the handler).
ONE_CAUSE_PER_STATUS = [
    drf_exceptions.PermissionDenied,
    drf_exceptions.NotFound,
    drf_exceptions.MethodNotAllowed,
    drf_exceptions.NotAcceptable,
    drf_exceptions.UnsupportedMediaType,
    drf_exceptions.Throttled,
]


@pytest.mark.urls("tests.fuzz.urls")
@pytest.mark.parametrize("exception", ONE_CAUSE_PER_STATUS, ids=lambda exception: exception.__name__)
def test_a_bare_refusal_gets_the_code_the_api_gives_the_same_refusal(exception: type[APIException]) -> None:
    # One refusal, one code: a 403 that a middleware or a decorator answered with an empty body is rewritten
    # (core/middleware.py, ErrorAnswersMiddleware) with the code a DRF view's 403 has, not a second spelling.
    needs_an_argument = {drf_exceptions.MethodNotAllowed: "GET", drf_exceptions.UnsupportedMediaType: "text/plain"}
    raised = exception(needs_an_argument[exception]) if exception in needs_an_argument else exception()
    from_the_api = api_exception_handler(raised, {})
    assert from_the_api is not None
    status = from_the_api.status_code
    response = Client().get(f"/api/v1/_bare/{status}/")
    assert_problem(response, status, from_the_api.data["code"])


@pytest.mark.urls("tests.fuzz.urls")
@override_settings(DEBUG=True)
def test_under_debug_the_html_pages_keep_django_s_debug_page() -> None:
    # The rule is for the API; a developer's HTML page under `make run` still shows the traceback.
    response = Client(raise_request_exception=False).get("/_crash/", headers={"Accept": "text/html"})
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


@override_settings(DEBUG=True)
def test_under_debug_an_unknown_api_path_is_a_problem_json_404() -> None:
    assert_problem(Client().get("/api/v1/no-such-thing/"), 404, "not_found")


@override_settings(DEBUG=True)
def test_under_debug_a_wrong_method_is_a_problem_json_405() -> None:
    response = Client().delete("/api/v1/products/")
    assert_problem(response, 405)
    assert "GET" in response["Allow"]


def test_a_rewritten_error_keeps_the_security_headers() -> None:
    # Django's empty 405 (require_GET) becomes the shop's page, outside the middleware that set these.
    page = Client().post("/healthz")
    assert page.status_code == 405
    assert 'class="brand"' in page.content.decode()
    assert page["Allow"] == "GET"
    assert "script-src 'self'" in page["Content-Security-Policy"]
    assert page["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db(transaction=True)
def test_under_gunicorn_with_debug_a_crash_is_problem_json_and_reaches_sentry() -> None:
    """The same, end to end: `make run`'s DEBUG=true under gunicorn, the real Sentry SDK, a local receiver."""
    receiver = SentryReceiver().start()
    server = AppServer(
        env=live_app_env(DJANGO_SETTINGS_MODULE="tests.fuzz.live_settings", DEBUG="true", SENTRY_DSN=receiver.dsn)
    )
    try:
        with server.client() as client:
            response = client.get("/api/v1/_crash/")
        assert response.status_code == 500
        assert response.headers["Content-Type"] == PROBLEM
        assert response.json()["code"] == "server_error"
        event = receiver.wait_for_event(lambda event: "RuntimeError" in exception_types(event))
        assert CRASH_MESSAGE in json.dumps(event)
    finally:
        server.stop()
        receiver.stop()


# --- Wrong content types, wrong methods, junk credentials and ids, on every operation ---------------------------

WRONG_BODIES = {
    "text/plain": ("text/plain", b'{"a": 1}'),
    "form": ("application/x-www-form-urlencoded", b"a=1&b=2"),
    "multipart": (
        "multipart/form-data; boundary=xyz",
        b"--xyz\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--xyz--",
    ),
    "xml": ("application/xml", b"<a>1</a>"),
    "not UTF-8": ("application/json", b'{"a": "\xff\xfe"}'),
    "a decompressing charset": ("application/json; charset=bz2_codec", b"BZh91AY&SY"),
    "JSON that is not an object": ("application/json", b"[1, 2, 3]"),
    "NaN": ("application/json", b'{"quantity": NaN}'),
}
# Not refused everywhere: an unknown charset is ignored (Django falls back to UTF-8), and an empty body is a
# valid no-op PATCH of a staff product. Never a 5xx, though, and an error is a problem.
ODD_BODIES = {
    "an unknown charset": ("application/json; charset=klingon", b"{}"),
    "empty": ("application/json", b""),
}
JUNK_AUTHORIZATION = [
    "Bearer",
    "Bearer ",
    "Bearer " + "x" * 10_000,
    "Basic YWxpY2U6cHc=",
    "Bearer a b",
    "Token abc",
    "\u00e9",
]


@pytest.mark.parametrize(("path", "method"), WITH_BODY, ids=[f"{method} {path}" for path, method in WITH_BODY])
@pytest.mark.parametrize("kind", list(WRONG_BODIES), ids=list(WRONG_BODIES))
def test_a_wrong_body_is_a_4xx_problem(path: str, method: str, kind: str, scene: Scene) -> None:
    content_type, body = WRONG_BODIES[kind]
    response = _client_for(path, scene).generic(
        method, _url(path, scene), body, content_type=content_type, headers={"Idempotency-Key": kind, "If-Match": '"1"'}
    )
    assert 400 <= response.status_code < 500, response.content[:300]
    assert response["Content-Type"] == PROBLEM


@pytest.mark.parametrize(("path", "method"), WITH_BODY, ids=[f"{method} {path}" for path, method in WITH_BODY])
@pytest.mark.parametrize("kind", list(ODD_BODIES), ids=list(ODD_BODIES))
def test_an_odd_body_is_never_a_5xx(path: str, method: str, kind: str, scene: Scene) -> None:
    content_type, body = ODD_BODIES[kind]
    response = _client_for(path, scene).generic(
        method, _url(path, scene), body, content_type=content_type, headers={"Idempotency-Key": kind, "If-Match": '"1"'}
    )
    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        assert response["Content-Type"] == PROBLEM


@pytest.mark.parametrize("path", sorted(DOCUMENT["paths"]))
def test_every_undocumented_method_is_a_405_problem_with_allow(path: str, scene: Scene) -> None:
    documented = {method.upper() for method in DOCUMENT["paths"][path]}
    client = _client_for(path, scene)
    for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE", "TRACE"} - documented):
        response = client.generic(method, _url(path, scene), b"{}", content_type="application/json")
        assert_problem(response, 405, "method_not_allowed")
        assert documented <= {allowed.strip() for allowed in response["Allow"].split(",")}


@pytest.mark.parametrize("path", sorted(DOCUMENT["paths"]))
@pytest.mark.parametrize("authorization", JUNK_AUTHORIZATION, ids=range(len(JUNK_AUTHORIZATION)))
def test_junk_credentials_are_a_4xx_problem_everywhere(path: str, authorization: str, scene: Scene) -> None:
    method = "get" if "get" in DOCUMENT["paths"][path] else next(iter(DOCUMENT["paths"][path]))
    client = Client(HTTP_AUTHORIZATION=authorization)
    response = client.generic(method.upper(), _url(path, scene), b"{}", content_type="application/json")
    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        assert response["Content-Type"] == PROBLEM


@pytest.mark.parametrize("junk", ["99999999999999999999999", "9223372036854775808", "0", "00001"])
def test_ids_past_every_integer_type_are_a_404(junk: str, scene: Scene) -> None:
    for path in DOCUMENT["paths"]:
        if "{" not in path:
            continue
        url = path.replace("{order_id}", junk).replace("{product_id}", junk)
        response = _client_for(path, scene).get(url)
        assert response.status_code in {404, 405}, (url, response.content[:200])
        assert response["Content-Type"] == PROBLEM


GETS = [path for path, method, _ in _operations(DOCUMENT) if method == "GET"]


@pytest.mark.parametrize("path", GETS)
def test_junk_query_strings_on_every_api_read_are_never_a_5xx(path: str, scene: Scene) -> None:
    """The crawl's junk (bad percent-encoding, NUL, 10,000 characters, ...) in every parameter of the API's
    reads, raw, as no client library would send it. The crawl covers the HTML routes the same way."""
    names = [p["name"] for p in DOCUMENT["paths"][path]["get"].get("parameters", []) if p["in"] == "query"]
    client = _client_for(path, scene)
    for value in (value for values in JUNK.values() for value in values):
        query = "&".join(f"{name}={value}" for name in [*names, "x"])
        response = client.get(_url(path, scene), QUERY_STRING=query)
        assert response.status_code < 500, (query[:100], response.content[:200])
        if response.status_code >= 400:
            assert response["Content-Type"] == PROBLEM
