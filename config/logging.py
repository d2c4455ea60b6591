"""Logging pieces: a 403 is one warning line, not a traceback; plain or JSON lines, with
credentials in URLs redacted either way."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any


class ForbiddenWithoutTraceback(logging.Filter):
    """Django logs every PermissionDenied with its traceback; a 403 is an expected answer
    (a user opened a page their role does not allow), so keep the line, drop the stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True


# --- JSON lines (LOG_FORMAT=json) ------------------------------------------------------

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is
# written as a field of its own.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}
# Never written as a field, whatever a caller passed in ``extra``: a request object carries
# cookies and headers, a socket nothing useful.
_NEVER_FIELDS = frozenset({"request", "server_time", "socket"})
# A URL's user:password@ is replaced, should one ever reach a log line (a DSN in a
# connection error, a repository URL someone typed with credentials).
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s:]+:[^/@\s]+@")


def redact(text: str) -> str:
    return _URL_CREDENTIALS.sub(r"\g<scheme>***@", text)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, process, the
    exception's traceback when there is one, and the record's ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "process": record.process,
        }
        if record.processName not in ("MainProcess", None):
            event["process_name"] = record.processName
        for key, value in vars(record).items():
            if key in _RECORD_FIELDS or key in _NEVER_FIELDS or key.startswith("_"):
                continue
            event[key] = (
                value if isinstance(value, int | float | bool | None) else redact(str(value))
            )
        if record.exc_info:
            event["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            event["exception"] = redact(record.exc_text)
        if record.stack_info:
            event["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(event, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """The human-readable line, with the same URL-credential redaction as JSON lines."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
