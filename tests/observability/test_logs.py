"""One logging style: `structlog.get_logger(__name__).info("event", key=value)` comes out as the same JSON line a
library's stdlib record does, and a key that stdlib reserves never breaks the call that logs it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from observability.logs import logging_config

LOGGER = "tests.observability.one_style"


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The production formatter (LOG_FORMAT=json) on a logger of its own, read back from a buffer."""
    formatter_config = dict(logging_config(log_format="json", level="INFO")["formatters"]["structured"])
    formatter_class = formatter_config.pop("()")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter_class(**formatter_config))
    stdlib_logger = logging.getLogger(LOGGER)
    stdlib_logger.addHandler(handler)
    stdlib_logger.setLevel(logging.INFO)
    stdlib_logger.propagate = False
    yield stream
    stdlib_logger.removeHandler(handler)
    stdlib_logger.propagate = True


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_structlog_event_is_the_same_line_as_a_stdlib_record_with_extra(json_lines: io.StringIO) -> None:
    structlog.get_logger(LOGGER).info("mail sent", outbox_id=7, attempts=1)
    logging.getLogger(LOGGER).info("mail sent", extra={"outbox_id": 7, "attempts": 1})
    ours, library = _lines(json_lines)
    assert ours.keys() == library.keys()
    assert {key: ours[key] for key in ours if key != "timestamp"} == {
        key: library[key] for key in library if key != "timestamp"
    }
    assert ours["event"] == "mail sent" and ours["logger"] == LOGGER and ours["level"] == "info"
    assert ours["outbox_id"] == 7 and {"request_id", "user_id", "pid"} <= ours.keys()


def test_the_exception_is_in_the_line_and_on_the_record(json_lines: io.StringIO) -> None:
    records: list[logging.LogRecord] = []

    class Collector(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    collector = Collector()
    logging.getLogger(LOGGER).addHandler(collector)
    try:
        raise ConnectionError("redis went away")
    except ConnectionError:
        structlog.get_logger(LOGGER).warning("could not release idempotency key", key_id=3, exc_info=True)
    finally:
        logging.getLogger(LOGGER).removeHandler(collector)
    (line,) = _lines(json_lines)
    assert line["exception"][0]["exc_type"] == "ConnectionError"
    # Sentry's logging integration reads the record: a plain message to group by, and the exception itself.
    (record,) = records
    assert record.getMessage() == "could not release idempotency key"
    assert record.exc_info is not None and record.exc_info[0] is ConnectionError


def test_a_key_that_a_log_record_reserves_is_kept_under_another_name(json_lines: io.StringIO) -> None:
    structlog.get_logger(LOGGER).info("source failed", name="database", module="orders")
    (line,) = _lines(json_lines)
    assert line["name_"] == "database" and line["module_"] == "orders"


def test_twin_without_the_guard_the_same_key_breaks_the_call() -> None:
    with pytest.raises(KeyError, match="Attempt to overwrite 'name' in LogRecord"):
        logging.getLogger(LOGGER).info("source failed", extra={"name": "database"})
