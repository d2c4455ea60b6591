"""Query parameters from the address bar: validated, so a bad one is ignored, never a 500."""

from __future__ import annotations

from datetime import date

from django.http import HttpRequest

# The largest primary key any of the databases stores (a signed 64-bit integer): a larger
# number in a URL makes SQLite raise OverflowError in the query itself.
MAX_ID = 2**63 - 1


def id_param(request: HttpRequest, name: str) -> int | None:
    """A primary key from ``?name=``, or None when it is absent or no possible key."""
    value = request.GET.get(name, "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        return None
    number = int(value)
    return number if 0 < number <= MAX_ID else None


def text_param(request: HttpRequest, name: str, *, limit: int = 200) -> str:
    """A short free-text parameter (a search, a version), trimmed and without NUL."""
    return request.GET.get(name, "").replace("\x00", "").strip()[:limit]


class ParamError(ValueError):
    """A query parameter that means nothing; ``str(e)`` says why, for the page to show."""


# More pages than any log could fill: a longer number is a typo (or a probe), not a page.
MAX_PAGE = 10**9


def page_param(request: HttpRequest, name: str = "page") -> int:
    """A page number from ``?name=`` (1 when absent); a page past the end is the paginator's
    to clamp, but a value that is no page number at all is a :class:`ParamError`."""
    value = request.GET.get(name, "").strip()
    if not value:
        return 1
    if value.isascii() and value.isdigit() and len(value) <= 10 and 0 < int(value) <= MAX_PAGE:
        return int(value)
    raise ParamError(f"“{text_param(request, name, limit=30)}” is not a page number.")


def date_param(request: HttpRequest, name: str) -> date | None:
    """A calendar date from ``?name=YYYY-MM-DD`` (None when absent), else a :class:`ParamError`."""
    value = text_param(request, name, limit=30)
    if not value:
        return None
    # fromisoformat() takes other ISO forms too (20260105, 2026-W01-1): only the one asked for.
    if value.isascii() and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ParamError(f"“{value}” is not a date: use YYYY-MM-DD.")
