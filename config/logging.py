"""Logging pieces: a 403 is one warning line, not a traceback."""

from __future__ import annotations

import logging


class ForbiddenWithoutTraceback(logging.Filter):
    """Django logs every PermissionDenied with its traceback; a 403 is an expected answer
    (a user opened a page their role does not allow), so keep the line, drop the stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True
