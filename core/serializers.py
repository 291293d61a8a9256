"""Input serializers that accept exactly what the OpenAPI document says, no more.

DRF is generous with input: an IntegerField takes "5" and 5.0, a CharField takes 5, a BooleanField takes
"yes", a CharField trims " x " before it checks max_length. Each of those accepts a request the OpenAPI
document (which says `integer`, `string`, `maxLength: 200`) calls invalid, so a client generated from the
document and the server disagree, and a fuzzer finds "schema-violating request accepted" on every operation.

`StrictInputSerializer` checks the raw input first, with the rules drf-spectacular writes into the document:
  - JSON bodies: the JSON type of every field (string, integer, number, boolean, object, array);
  - every input, query strings included: maxLength and minLength on the raw string, before trimming;
then hands over to DRF for everything else (choices, regexes, ranges, nested serializers).
"""

from __future__ import annotations

import re
from typing import Any

from django.http import QueryDict
from rest_framework import serializers

# What the server accepts as text, as patterns for the OpenAPI document (core/openapi.py): no NUL anywhere
# (PostgreSQL cannot store it; DRF's CharField and core/middleware.py refuse it), and for trimmed required
# fields at least one non-space character (DRF trims " " to "" and refuses it as blank). Without them the
# document would call " " and a NUL valid.
TEXT_PATTERN = r"^[^\u0000]*$"
# The characters DRF trims (Python's str.strip(), str.isspace()), spelled out: the document's regex dialect is
# ECMAScript's, whose \s leaves out U+001C-U+001F and U+0085, so a name of "\u001c" was valid in the document and
# blank to the server, a schema-valid request refused 400 (found by `make fuzz`). tests/fuzz/
# test_openapi_document.py checks this class against Python's own whitespace.
PYTHON_WHITESPACE_CLASS = r"\t\n\u000b\f\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NON_BLANK_TEXT_PATTERN = rf"^[^\u0000]*[^{PYTHON_WHITESPACE_CLASS}\u0000][^\u0000]*$"

# DRF field class -> the JSON types drf-spectacular documents for it (checked in this order: subclasses first).
_JSON_TYPES: list[tuple[type[serializers.Field[Any, Any, Any, Any]], tuple[type, ...], str]] = [
    (serializers.BooleanField, (bool,), "a boolean"),
    (serializers.IntegerField, (int,), "an integer"),
    (serializers.FloatField, (int, float), "a number"),
    # COERCE_DECIMAL_TO_STRING: decimals are documented (and returned) as strings like "12.50".
    (serializers.DecimalField, (str,), 'a string like "12.50"'),
    (serializers.CharField, (str,), "a string"),
    (serializers.ChoiceField, (str,), "a string"),
    (serializers.ListField, (list,), "an array"),
    (serializers.ListSerializer, (list,), "an array"),
    (serializers.DictField, (dict,), "an object"),
    (serializers.Serializer, (dict,), "an object"),
]


def _expected_json_type(field: serializers.Field[Any, Any, Any, Any]) -> tuple[tuple[type, ...], str] | None:
    for field_class, types, label in _JSON_TYPES:
        if isinstance(field, field_class):
            return types, label
    return None


def decimal_pattern(field: serializers.DecimalField) -> str:
    """The strings a DecimalField input takes, exactly: "12.50", "0.5", "3"; a sign only when negatives are
    allowed. (DRF alone also takes " 5 ", "+5", "1e2" and "5.", none of which the document allows.)"""
    places = field.decimal_places or 0
    whole = (field.max_digits - places) if field.max_digits is not None else None
    sign = "" if field.min_value is not None and field.min_value >= 0 else "-?"
    digits = rf"\d{{1,{whole}}}" if whole else r"\d+"
    fraction = rf"(?:\.\d{{1,{places}}})?" if places else ""
    return rf"^{sign}{digits}{fraction}$"


def raw_input_errors(fields: dict[str, Any], data: Any) -> dict[str, list[str]]:
    """What DRF would coerce or trim away, checked on the raw value. Empty when everything is as documented."""
    errors: dict[str, list[str]] = {}
    if not hasattr(data, "get"):
        return errors  # DRF answers "Expected a dictionary" itself
    is_json = not isinstance(data, QueryDict)
    for name, field in fields.items():
        if field.read_only or name not in data:
            continue
        value = data.get(name)
        if value is None:
            continue  # allow_null is DRF's to judge
        if not is_json and value == "" and not getattr(field, "allow_blank", False):
            # DRF reads `?status=` in a query string as "not sent"; the document calls it an invalid value.
            errors[name] = ["This field may not be blank."]
            continue
        expected = _expected_json_type(field) if is_json else None
        # bool is an int in Python; JSON true is not an integer.
        if expected and (not isinstance(value, expected[0]) or (isinstance(value, bool) and bool not in expected[0])):
            errors[name] = [f"Must be {expected[1]}."]
            continue
        if isinstance(field, serializers.DecimalField) and isinstance(value, str) and is_json:
            if not re.fullmatch(decimal_pattern(field), value):
                errors[name] = ['Must be a decimal string like "12.50".']
            continue
        if isinstance(field, serializers.CharField) and isinstance(value, str):
            # Trimming first would let a 201-character " x ... " through a maxLength of 200.
            if field.max_length is not None and len(value) > field.max_length:
                errors[name] = [f"Ensure this field has no more than {field.max_length} characters."]
            elif field.min_length is not None and len(value) < field.min_length:
                errors[name] = [f"Ensure this field has at least {field.min_length} characters."]
    return errors


class StrictInputSerializer(serializers.Serializer[Any]):
    # Base for every API input serializer (bodies and query filters); nested ones inherit the checks. (A
    # comment, not a docstring: drf-spectacular would print it as the description of every subclass.)

    # Fields of which a request must send at least one (a PATCH with none of them changes nothing and is
    # refused); core/openapi.py writes it into the document as `anyOf: [{required: [name]}, ...]`.
    at_least_one_of: tuple[str, ...] = ()

    def to_internal_value(self, data: Any) -> Any:
        errors = raw_input_errors(dict(self.fields), data)
        if errors:
            raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
