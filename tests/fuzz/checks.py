"""Checks of our own, registered with schemathesis next to its built-in ones (which all stay on)."""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from schemathesis.core.failures import Failure

# Operations where a schema-valid request can be refused with 400 for a reason the schema cannot state.
# schemathesis.toml switches the built-in positive_data_acceptance off for exactly these; this check
# applies the same rule with the listed exceptions, each matched on the problem's `code` and fields.
SEMANTIC_REFUSALS: dict[str, Any] = {
    # Django's password validators (common list, similarity to the username, only digits) and a taken username.
    "POST /api/v1/auth/register/": lambda problem: (
        problem.get("code") == "invalid"
        and set(problem.get("errors", {})) <= {"password", "username"}
        and all("taken" in message for message in problem.get("errors", {}).get("username", []))
    ),
    # A product id that names no product, or two lines of one product whose sum passes the per-order cap.
    "POST /api/v1/orders/": lambda problem: (
        problem.get("code") in {"unknown_product", "invalid"} and set(problem.get("errors", {})) <= {"lines"}
    ),
    # A link's uid and token are opaque strings: only the server knows which name a live link. And Django's
    # password validators, as at sign-up.
    "POST /api/v1/auth/password-reset/confirm/": lambda problem: (
        problem.get("code") == "invalid_token" or _password_validators_refused(problem, "new_password")
    ),
    # The current password is a secret the schema cannot know; then the validators on the new one.
    "POST /api/v1/auth/password/": lambda problem: (
        (problem.get("code") == "wrong_password" and set(problem.get("errors", {})) == {"current_password"})
        or _password_validators_refused(problem, "new_password")
    ),
    "POST /api/v1/auth/email/": lambda problem: (
        problem.get("code") == "wrong_password" and set(problem.get("errors", {})) == {"password"}
    ),
    # A confirmation token names an address change only the server has signed, for one account.
    "POST /api/v1/auth/email/verify/": lambda problem: problem.get("code") in {"invalid_token", "wrong_account"},
}


def _password_validators_refused(problem: dict[str, Any], field: str) -> bool:
    return problem.get("code") == "invalid" and set(problem.get("errors", {})) == {field}


ACCEPTED = {401, 403, 404, 409, 412, 422, 429}


class SchemaValidRequestRefused(Failure):
    kind_title = "API rejected schema-compliant request"


@schemathesis.check
def positive_data_is_accepted(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Any) -> None:
    refusal_is_semantic = SEMANTIC_REFUSALS.get(case.operation.label)
    meta = case.meta
    if refusal_is_semantic is None or meta is None or not meta.generation.mode.is_positive:
        return
    if 200 <= response.status_code < 300 or response.status_code in ACCEPTED:
        return
    try:
        problem = json.loads(response.content)
    except ValueError:
        problem = {}
    if response.status_code == 400 and isinstance(problem, dict) and refusal_is_semantic(problem):
        return
    body = response.content.decode(errors="replace")[:300]
    raise SchemaValidRequestRefused(
        operation=case.operation.label,
        message=f"Valid data should have been accepted; got {response.status_code}: {body}",
    )
