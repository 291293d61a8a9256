"""The OpenAPI document tells the truth: what each operation answers, derived from what its view declares.

drf-spectacular documents the success answer of each operation from its serializers. Everything a client must
also handle was missing: the error answers, their problem+json body, the headers that carry protocol (ETag,
If-Match, Idempotency-Key, Retry-After). Writing those by hand per operation drifts the day a view changes,
so `ShopAutoSchema` derives them from the view itself:

    what the view declares                              what the document then says
    any operation                                       400 (malformed query, NUL), 406, 413, 503
    an authentication class (JWT)                       401 (a bad or expired token, or none where required)
    a permission beyond IsAuthenticated (IsStaff)       403
    a path parameter                                    404
    an unsafe method                                    409 (busy: another request holds the row)
    a request body                                      415 (not application/json)
    the IF_MATCH parameter                              412 (stale ETag), 428 (no If-Match)
    the IDEMPOTENCY_KEY parameter                       409 (in flight), 422 (key reused with another body)
    a throttle that counts this method                  429, with Retry-After
    pagination_class on a list                          {next, previous, results} with cursor and page_size,
                                                        and 404 for a cursor that names no page
    `error_statuses = (401, 429)` on the view           those (what only the view's logic knows)

Every error answer is `application/problem+json` with the one `Problem` schema (core/problems.py builds the
bodies). `postprocess_links` adds OpenAPI links (create -> read -> edit, ETag -> If-Match), so a client, and
schemathesis' stateful phase, can follow the API from one answer to the next.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent, force_instance
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated

from core.problems import PROBLEM_CONTENT_TYPE
from core.request_context import REQUEST_ID_PATTERN
from core.serializers import NON_BLANK_TEXT_PATTERN, TEXT_PATTERN, decimal_pattern

PROBLEM_COMPONENT = "Problem"
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "An RFC 9457 problem. `code` is stable and machine-readable; `errors` names the invalid fields; "
        "`retry_after` repeats the Retry-After header. Some problems add their own members (e.g. `items` on "
        "`insufficient_stock`)."
    ),
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "code": {"type": "string", "example": "invalid"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "Field -> messages, for validation errors (`lines[0].quantity`, `shipping_address.name`).",
        },
        "retry_after": {"type": "integer", "minimum": 0, "description": "Seconds; the same as Retry-After."},
    },
    "required": ["type", "title", "status", "detail", "code"],
}

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# --- Parameters a view declares; the error answers follow from them ------------------------------------------

IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    required=True,
    pattern=NON_BLANK_TEXT_PATTERN,
    description='The ETag you read (`"3"`). Stale: 412 `precondition_failed`. Missing: 428 `precondition_required`.',
)
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": NON_BLANK_TEXT_PATTERN},
    OpenApiParameter.HEADER,
    required=True,
    description=(
        "1-255 characters, one per intended order (see the API description for the retention). The same key "
        "and body again: the first answer, with `Idempotent-Replayed: true`. The same key with another body: "
        "422 `idempotency_key_reused`. The first request still running: 409 `request_in_flight`."
    ),
)
ETAG = OpenApiParameter(
    "ETag",
    str,
    OpenApiParameter.HEADER,
    response=True,
    required=True,
    description='The version of this resource (`"3"`); send it back as If-Match to change it.',
)
LOCATION = OpenApiParameter(
    "Location", str, OpenApiParameter.HEADER, response=[201], required=True, description="The new resource."
)
IDEMPOTENT_REPLAYED = OpenApiParameter(
    "Idempotent-Replayed",
    str,
    OpenApiParameter.HEADER,
    response=[201],
    enum=["true"],
    description="Present on a replay: this is the stored answer of the first request with this Idempotency-Key.",
)

_ERROR_DESCRIPTIONS = {
    400: "Invalid request: see `errors`, or `code` (`invalid`, `malformed_request`, `invalid_characters`).",
    401: "Not authenticated: no, an invalid or an expired bearer token.",
    403: "Authenticated, but this section is not open to you.",
    404: "No such resource (or not yours: the two look the same), or a cursor that names no page.",
    406: "The Accept header asks for something other than JSON.",
    409: "Conflict: the resource's state does not allow this, or another request holds it (`busy`, Retry-After).",
    412: "If-Match does not match the current ETag: someone changed the resource since you read it.",
    413: "The request body is larger than the limit.",
    415: "The request body is not application/json.",
    422: "This Idempotency-Key was already used with a different request body.",
    428: "This request must be conditional: send If-Match with the ETag you read.",
    429: "Too many requests (or too many failed log-ins): wait Retry-After seconds.",
    503: "A dependency is unavailable, the request took too long, or the shop is overloaded (`overloaded`): "
    "retry after Retry-After seconds.",
}


def _header(description: str, *, required: bool, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"schema": schema or {"type": "string"}, "required": required, "description": description}


REQUEST_ID_HEADER = _header(
    "The request id: yours when you sent a valid X-Request-ID, else a fresh one. Quote it when you report a problem.",
    required=True,
    schema={"type": "string", "pattern": REQUEST_ID_PATTERN},
)
RETRY_AFTER_HEADER = _header("Seconds to wait before retrying.", required=True, schema={"type": "integer"})


class ShopAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, plus the answers every operation can give (see the module docstring)."""

    def _declared_headers(self) -> set[str]:
        return {
            parameter.name
            for parameter in self.get_override_parameters()
            if isinstance(parameter, OpenApiParameter) and parameter.location == OpenApiParameter.HEADER
        }

    def error_statuses(self) -> list[int]:
        """The error answers this operation can give, from what its view declares."""
        view = self.view
        statuses = {400, 406, 413, 503}
        if view.get_authenticators():
            statuses.add(401)
        permissions = [type(permission) for permission in view.get_permissions()]
        if any(permission not in (AllowAny, IsAuthenticated) for permission in permissions):
            statuses.add(403)
        if "{" in self.path or getattr(view, "pagination_class", None):
            statuses.add(404)  # no such resource, or a cursor that names no page
        if self.method not in SAFE_METHODS:
            statuses.add(409)
        if self._get_request_body():
            statuses.add(415)
        headers = self._declared_headers()
        if IF_MATCH.name in headers:
            statuses |= {412, 428}
        if IDEMPOTENCY_KEY.name in headers:
            statuses |= {409, 422}
        for throttle in view.get_throttles():
            if self.method in getattr(throttle, "methods", SAFE_METHODS | {"POST", "PUT", "PATCH", "DELETE"}):
                statuses.add(429)
        # What only the view's own logic knows, e.g. 401 for wrong credentials at the token endpoint.
        statuses |= set(getattr(view, "error_statuses", ()))
        return sorted(statuses)

    def _component(self, kind: str, name: str, body: dict[str, Any]) -> dict[str, str]:
        """Register a shared component once and answer its $ref (the document stays one screen per operation)."""
        component = ResolvedComponent(name=name, type=kind, object=name, schema=body)
        self.registry.register_on_missing(component)
        return component.ref

    def _request_id_header(self) -> dict[str, str]:
        return self._component(ResolvedComponent.HEADER, "X-Request-ID", REQUEST_ID_HEADER)

    def _error_response(self, status: int) -> dict[str, str]:
        headers: dict[str, Any] = {"X-Request-ID": self._request_id_header()}
        if status in (429, 503):
            headers["Retry-After"] = RETRY_AFTER_HEADER
        elif status == 409:
            headers["Retry-After"] = {**RETRY_AFTER_HEADER, "required": False}
        elif status == 401:
            headers["WWW-Authenticate"] = _header("The scheme to authenticate with.", required=False)
        problem = self._component(ResolvedComponent.SCHEMA, PROBLEM_COMPONENT, PROBLEM_SCHEMA)
        response = {
            "description": _ERROR_DESCRIPTIONS[status],
            "headers": headers,
            "content": {PROBLEM_CONTENT_TYPE: {"schema": problem}},
        }
        return self._component(ResolvedComponent.RESPONSE, f"Problem{status}", response)

    def _get_request_body(self, direction: Any = "request") -> dict[str, Any] | None:
        body: dict[str, Any] | None = super()._get_request_body(direction)
        if body is not None and getattr(force_instance(self.get_request_serializer()), "at_least_one_of", None):
            body["required"] = True  # a PATCH without a body changes nothing and is refused
        return body

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        for status in self.error_statuses():
            responses.setdefault(str(status), self._error_response(status))
        return responses

    def _get_response_headers_for_code(self, status_code: Any, direction: Any = "response") -> dict[str, Any]:
        headers: dict[str, Any] = super()._get_response_headers_for_code(status_code, direction)
        # Every answer carries X-Request-ID (core/middleware.py): one id finds the request in the logs.
        return {"X-Request-ID": self._request_id_header(), **headers}

    def _map_basic_serializer(self, serializer: Any, direction: Any) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_basic_serializer(serializer, direction)
        if direction != "request":
            return schema
        instance = force_instance(serializer)
        required_one_of = getattr(instance, "at_least_one_of", ())
        if required_one_of:
            schema["anyOf"] = [{"required": [name]} for name in required_one_of]
        for field in instance.fields.values():
            documented = schema.get("properties", {}).get(field.field_name)
            if documented is None:
                continue
            if isinstance(field, serializers.ListSerializer) and documented.get("type") == "array":
                # drf-spectacular leaves out the bounds of a nested many=True serializer; DRF enforces them.
                min_length, max_length = getattr(field, "min_length", None), getattr(field, "max_length", None)
                if not field.allow_empty:
                    documented["minItems"] = max(1, min_length or 0)
                elif min_length is not None:
                    documented["minItems"] = min_length
                if max_length is not None:
                    documented["maxItems"] = max_length
            elif isinstance(field, serializers.DecimalField) and documented.get("type") == "string":
                documented["pattern"] = decimal_pattern(field)  # what StrictInputSerializer checks
            elif documented.get("type") == "string" and not {"pattern", "enum", "format"} & set(documented):
                # See TEXT_PATTERN: " " (trimmed to blank) and NUL are refused, so the document says so.
                documented["pattern"] = (
                    NON_BLANK_TEXT_PATTERN if _trimmed_and_required_non_blank(field) else TEXT_PATTERN
                )
        return schema

    def _get_parameters(self) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super()._get_parameters()
        parameters.append(
            {
                "in": "header",
                "name": "X-Request-ID",
                "required": False,
                "schema": {"type": "string", "pattern": TEXT_PATTERN},
                "description": (
                    "Your id for this request, echoed back when it matches "
                    f"`{REQUEST_ID_PATTERN}`; anything else is replaced by a fresh id (only a NUL is refused, "
                    "as in any header)."
                ),
            }
        )
        return parameters


def _trimmed_and_required_non_blank(field: Any) -> bool:
    return (
        isinstance(field, serializers.CharField)
        and not field.read_only
        and field.trim_whitespace
        and not field.allow_blank
    )


# --- Links: how one answer leads to the next operation ---------------------------------------------------------


def _path_parameters(operation: dict[str, Any]) -> list[str]:
    return [p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"]


def _declares_header(operation: dict[str, Any], name: str) -> bool:
    return any(p.get("in") == "header" and p.get("name") == name for p in operation.get("parameters", []))


def _success(operation: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    for status in ("201", "200"):
        if status in operation.get("responses", {}):
            return status, operation["responses"][status]
    return None


def postprocess_links(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]): add OpenAPI links.

    From an answer that carries a resource (`id`) to every operation on that resource's path:
      - POST /orders/ (201 Order)       -> /orders/{order_id}/..., order_id = $response.body#/id
      - GET /orders/ (a page of orders) -> the same, from the first result: $response.body#/results/0/id
      - GET or PATCH /orders/{order_id}/ -> the other operations on it, order_id = $request.path.order_id,
        and If-Match = $response.header.ETag when the target needs one and the answer has one.
    """
    paths: dict[str, dict[str, Any]] = result.get("paths", {})
    operations = [
        (path, method, operation)
        for path, item in paths.items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    ]
    for path, _method, operation in operations:
        success = _success(operation)
        if success is None:
            continue
        status, response = success
        content = response.get("content", {}).get("application/json", {})
        if not content:
            continue
        own_parameters = _path_parameters(operation)
        schema_ref = content.get("schema", {}).get("$ref", "")
        is_page = schema_ref.split("/")[-1].startswith("Paginated")
        links: dict[str, Any] = {}
        for target_path, _target_method, target in operations:
            if target is operation:
                continue
            target_parameters = _path_parameters(target)
            if not target_parameters:
                continue
            if target_path.startswith(path) and len(target_parameters) == len(own_parameters) + 1:
                # A resource this answer created or listed.
                new = target_parameters[-1]
                if target_path[len(path) :].split("/")[0] != f"{{{new}}}":
                    continue
                pointer = "$response.body#/results/0/id" if is_page else "$response.body#/id"
                parameters: dict[str, str] = {new: pointer}
                for name in own_parameters:
                    parameters[name] = f"$request.path.{name}"
            elif own_parameters and target_parameters == own_parameters and target_path.startswith(path):
                # Another operation on the same resource (detail -> edit, cancel, fulfil).
                parameters = {name: f"$request.path.{name}" for name in own_parameters}
            else:
                continue
            if _declares_header(target, IF_MATCH.name) and "ETag" in response.get("headers", {}) and not is_page:
                parameters[f"header.{IF_MATCH.name}"] = "$response.header.ETag"
            links[target["operationId"]] = {"operationId": target["operationId"], "parameters": parameters}
        if links:
            operation["responses"][status]["links"] = links
    return result
