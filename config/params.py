"""Query parameters from the address bar: validated, so a bad one is ignored, never a 500."""

from __future__ import annotations

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
