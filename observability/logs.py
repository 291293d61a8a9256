"""Structured logs: one JSON object per line on stdout, with the request id and user id on every line.

Our code logs one way: `logger = structlog.get_logger(__name__)`, then `logger.info("event name", key=value)`.
structlog hands each event to stdlib logging as a record (the event name its message, the keys its extra), so
our lines and every library's (Django, Celery, gunicorn) go through one formatter and come out in one format,
and Sentry's logging integration sees a plain message to group by. Chosen over python-json-logger because its
processors add the request context in one place and the same pipeline pretty-prints for local development
(LOG_FORMAT=console).

Find a request's whole story (web and worker lines) with:  jq -c 'select(.request_id == "<id>")'
"""

from __future__ import annotations

import logging
import os
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from core.request_context import current_request_id
from observability.context import current_user_id


def add_request_context(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """One id finds the story: every line carries the request id (also inside tasks) and the user id."""
    event_dict.setdefault("request_id", current_request_id.get())
    event_dict.setdefault("user_id", current_user_id())
    return event_dict


def add_process_id(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    # Several gunicorn workers and Celery children write to one stream: the pid says which one.
    event_dict.setdefault("pid", os.getpid())
    return event_dict


def _context_processors() -> list[Processor]:
    """Run on every line, whether it came from structlog or from a stdlib logger."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        add_request_context,
        add_process_id,
    ]


def _renderer(log_format: str) -> Processor:
    if log_format == "json":
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=False)


# Attributes every LogRecord has: stdlib refuses an extra that would overwrite one (KeyError in the log call).
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_LOG_KWARGS = frozenset({"exc_info", "stack_info", "stacklevel"})  # passed to stdlib as themselves


def keep_clear_of_record_attributes(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """A log line must never break the request it describes: `name=...` or `module=...` is kept as `name_`."""
    for key in [key for key in event_dict if key in _RECORD_ATTRIBUTES and key not in _LOG_KWARGS]:
        event_dict[f"{key}_"] = event_dict.pop(key)
    return event_dict


def configure_structlog() -> None:
    """structlog hands its events to stdlib logging as records (message + extra), so LOGGING below decides
    where and how they are written, exactly as for every library's records."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            keep_clear_of_record_attributes,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.render_to_log_kwargs,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """The LOGGING setting: every record, ours or a library's, goes through the same structlog pipeline."""
    if log_format not in {"json", "console"}:
        raise ValueError(f"LOG_FORMAT={log_format!r} must be json or console")
    # Tracebacks as structured JSON, without frame locals: they hold request payloads (addresses, tokens).
    exception_processors: list[Processor] = (
        [structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False))]
        if log_format == "json"
        else []
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                # Every record, ours (the keys arrive as extra) or a library's, gets the same fields.
                "foreign_pre_chain": [*_context_processors(), structlog.stdlib.ExtraAdder()],
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    *exception_processors,
                    _renderer(log_format),
                ],
            }
        },
        "handlers": {
            "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "structured"}
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "INFO"},
            # One line per request is ours (observability.access); gunicorn's own access log stays off.
            "gunicorn.access": {"level": "WARNING"},
        },
    }


def access_logger() -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger("observability.access")
    return logger


def level_for_status(status: int) -> int:
    if status >= 500:
        return logging.ERROR
    if status >= 400:
        return logging.WARNING
    return logging.INFO
