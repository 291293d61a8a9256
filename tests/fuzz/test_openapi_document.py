"""Defect 5 of issue 12: the OpenAPI document describes the API a client will actually meet.

It used to document every list as a bare array and no error at all. These tests read /api/v1/schema/ and
check what core/openapi.py derives from the views; schemathesis (test_api_schemathesis.py) then checks every
real answer against the document, and that schema-valid requests are accepted and invalid ones refused.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.test import Client
from drf_spectacular.validation import validate_schema

from core.serializers import NON_BLANK_TEXT_PATTERN, PYTHON_WHITESPACE_CLASS

DOCUMENT: dict[str, Any] = yaml.safe_load(Client().get("/api/v1/schema/").content)
OPERATIONS = [
    (path, method.upper(), operation) for path, item in DOCUMENT["paths"].items() for method, operation in item.items()
]
IDS = [f"{method} {path}" for path, method, _ in OPERATIONS]
UNAUTHENTICATED = {"/api/v1/auth/token/", "/api/v1/auth/token/refresh/"}  # credentials in the body instead
THROTTLED = {
    ("POST", "/api/v1/auth/token/"),
    ("POST", "/api/v1/auth/register/"),
    ("POST", "/api/v1/orders/"),
    ("PATCH", "/api/v1/orders/{order_id}/"),
    ("POST", "/api/v1/orders/{order_id}/cancel/"),
    ("POST", "/api/v1/auth/password-reset/"),
    ("POST", "/api/v1/auth/password-reset/confirm/"),
    ("POST", "/api/v1/auth/password/"),
    ("POST", "/api/v1/auth/email/"),
    ("POST", "/api/v1/auth/email/verify/"),
    ("POST", "/api/v1/auth/email/verify/resend/"),
}


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, kind, name = node["$ref"].split("/")
        node = DOCUMENT["components"][kind][name]
    return node


def responses(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {status: resolve(response) for status, response in operation["responses"].items()}


def header_names(operation: dict[str, Any]) -> set[str]:
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}


def test_the_document_is_valid_openapi_3_with_unique_operation_ids() -> None:
    validate_schema(DOCUMENT)
    counts = Counter(operation["operationId"] for _, _, operation in OPERATIONS)
    assert [name for name, count in counts.items() if count > 1] == []


def test_one_problem_schema_for_every_error() -> None:
    problem = DOCUMENT["components"]["schemas"]["Problem"]
    assert problem["required"] == ["type", "title", "status", "detail", "code"]
    assert {"errors", "retry_after"} <= set(problem["properties"])


@pytest.mark.parametrize(("path", "method", "operation"), OPERATIONS, ids=IDS)
def test_every_error_answer_is_problem_json(path: str, method: str, operation: dict[str, Any]) -> None:
    for status, response in responses(operation).items():
        if int(status) >= 400:
            assert list(response["content"]) == ["application/problem+json"], status
            assert response["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
            assert "X-Request-ID" in response["headers"]


@pytest.mark.parametrize(("path", "method", "operation"), OPERATIONS, ids=IDS)
def test_every_operation_documents_the_errors_its_view_can_give(
    path: str, method: str, operation: dict[str, Any]
) -> None:
    documented = set(responses(operation))
    expected = {"400", "413", "503"}
    if path not in UNAUTHENTICATED or path == "/api/v1/auth/token/refresh/":
        expected.add("401")
    if "{" in path or (method == "GET" and "cursor" in {p["name"] for p in operation.get("parameters", [])}):
        expected.add("404")
    if method != "GET":
        expected.add("409")
    if "If-Match" in header_names(operation):
        expected |= {"412", "428"}
    if "Idempotency-Key" in header_names(operation):
        expected.add("422")
    if (method, path) in THROTTLED:
        expected.add("429")
    if path.startswith("/api/v1/staff/"):
        expected.add("403")
    assert expected <= documented
    for status in {"429", "503"} & documented:
        assert responses(operation)[status]["headers"]["Retry-After"]["required"] is True


@pytest.mark.parametrize(("path", "method", "operation"), OPERATIONS, ids=IDS)
def test_every_list_is_a_page_of_next_previous_results(path: str, method: str, operation: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in operation.get("parameters", [])}
    if "cursor" not in parameters:
        return
    page = resolve(responses(operation)["200"]["content"]["application/json"]["schema"])
    assert page["required"] == ["next", "previous", "results"]
    assert page["properties"]["results"]["type"] == "array"
    assert parameters["page_size"]["schema"] == {"type": "integer", "minimum": 1, "maximum": settings.API_MAX_PAGE_SIZE}


def test_the_protocol_headers_are_documented() -> None:
    create = DOCUMENT["paths"]["/api/v1/orders/"]["post"]
    key = next(p for p in create["parameters"] if p["name"] == "Idempotency-Key")
    assert key["required"] is True and key["schema"]["maxLength"] == 255
    created = responses(create)["201"]["headers"]
    assert {"ETag", "Location", "Idempotent-Replayed", "X-Request-ID"} <= set(created)
    edit = DOCUMENT["paths"]["/api/v1/orders/{order_id}/"]["patch"]
    assert next(p for p in edit["parameters"] if p["name"] == "If-Match")["required"] is True
    assert "ETag" in responses(edit)["200"]["headers"]


def test_the_limits_in_the_document_are_the_limits_in_the_code() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    lines = schemas["OrderCreateInputRequest"]["properties"]["lines"]
    assert (lines["minItems"], lines["maxItems"]) == (1, settings.ORDER_MAX_LINES)
    quantity = schemas["OrderLineInputRequest"]["properties"]["quantity"]
    assert (quantity["minimum"], quantity["maximum"]) == (1, settings.ORDER_MAX_QUANTITY_PER_LINE)
    assert schemas["OrderOutput"]["properties"]["status"]["allOf"][0] == {"$ref": "#/components/schemas/StatusEnum"}
    # A PATCH must change something: at least one of the two fields, and a body at all.
    patch = DOCUMENT["paths"]["/api/v1/orders/{order_id}/"]["patch"]
    assert patch["requestBody"]["required"] is True
    assert schemas["PatchedOrderUpdateInputRequest"]["anyOf"] == [
        {"required": ["shipping_address"]},
        {"required": ["note"]},
    ]


def test_the_documented_blank_is_exactly_what_the_server_trims() -> None:
    """A required text field is documented as "at least one character the server does not trim". The class
    of characters in that pattern must be Python's own whitespace (DRF trims with str.strip()): with
    ECMAScript's \\s instead, "\\u001c" was valid in the document and blank to the server."""
    spaces = re.compile(f"[{PYTHON_WHITESPACE_CLASS}]")
    documented = {chr(code) for code in range(0x110000) if spaces.fullmatch(chr(code))}
    assert documented == {chr(code) for code in range(0x110000) if chr(code).isspace()}
    for blank in ["\u001c", " \u0085 ", "\u3000", " \t"]:
        assert not re.fullmatch(NON_BLANK_TEXT_PATTERN, blank) and not blank.strip()
    for text in ["a", " a ", "\ufeff"]:
        assert re.fullmatch(NON_BLANK_TEXT_PATTERN, text) and text.strip()
