"""The before_send scrubber on its own (the end-to-end scan of what the SDK sends is in test_live_stack.py)."""

from __future__ import annotations

from observability.sentry import FILTERED, mask_secrets_in_text, scrub_event


def test_card_numbers_and_tokens_in_free_text_are_masked() -> None:
    text = (
        "charge failed for 4111 1111 1111 1111, order 1234567890123 (not a card: fails Luhn), "
        "auth Bearer abc.def-ghi_jkl and eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjo1fQ.c2lnbmF0dXJlLXZhbHVl"
    )

    masked = mask_secrets_in_text(text)

    assert "4111" not in masked
    assert "1234567890123" in masked
    assert "abc.def-ghi_jkl" not in masked
    assert "eyJ" not in masked
    assert masked.count(FILTERED) == 3


def test_requests_keep_only_safe_headers_and_lose_bodies_cookies_and_secret_parameters() -> None:
    event = {
        "request": {
            "url": "http://shop/api/v1/orders/",
            "query_string": "page_size=10&token=abc123&password=hunter2",
            "headers": {"User-Agent": "curl", "Authorization": "Bearer xyz", "X-Forwarded-For": "1.2.3.4"},
            "cookies": {"sessionid": "s3ss10n"},
            "data": {"shipping_address": {"line1": "1 Secret Road"}},
        },
        "exception": {"values": [{"type": "RuntimeError", "value": "card 4012888888881881 refused"}]},
    }

    scrubbed = scrub_event(event, {})

    request = scrubbed["request"]
    assert request["headers"] == {"User-Agent": "curl"}
    assert "cookies" not in request
    assert "data" not in request
    assert request["query_string"] == "page_size=10&token=%5BFiltered%5D&password=%5BFiltered%5D"
    assert scrubbed["exception"]["values"][0]["value"] == f"card {FILTERED} refused"
    assert scrubbed["user"] == {}  # no request, no user: nothing guessed


def test_without_a_dsn_nothing_is_installed() -> None:
    import sentry_sdk
    from django.conf import settings

    from observability.sentry import sentry_init

    assert sentry_init(dsn="", environment="test", release=None, sample_rate=1.0, traces_sample_rate=0.0) is False
    assert settings.SENTRY_ENABLED is False
    assert not sentry_sdk.get_client().is_active()
