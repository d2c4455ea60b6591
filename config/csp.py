"""A strict Content-Security-Policy on every response Wharf serves.

Everything a page uses is served by Wharf itself (htmx, Bootstrap and wharf.css come from
static/), so the policy allows only 'self': no inline script or style, no eval, nothing
from elsewhere. Images may also be ``data:`` URIs (Bootstrap's own icons, inline chart
icons). A view that shows images from a known host (a chart's icon, served by the chart's
own source) names that origin with :func:`allow`, for that response only.

A tiny middleware rather than a dependency: the policy is one fixed string plus, rarely,
a few image origins.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.http import HttpResponse

from config import signin

HEADER = "Content-Security-Policy"

POLICY: dict[str, tuple[str, ...]] = {
    "default-src": ("'self'",),
    "script-src": ("'self'",),
    "style-src": ("'self'",),
    "img-src": ("'self'", "data:"),
    "object-src": ("'none'",),
    "base-uri": ("'none'",),
    "form-action": ("'self'",),
    "frame-ancestors": ("'none'",),
}


def allow(response: HttpResponse, directive: str, sources: Iterable[str]) -> HttpResponse:
    """Add ``sources`` (origins such as ``https://charts.example.com``) to one directive of
    this response's policy."""
    extra = response.__dict__.setdefault("_csp_extra", {})
    extra.setdefault(directive, []).extend(s for s in sources if _is_origin(s))
    return response


def _is_origin(source: str) -> bool:
    # Only scheme://host[:port]: nothing from upstream data may add a keyword or a directive.
    scheme, sep, rest = source.partition("://")
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789.-:[]")
    return scheme in ("http", "https") and bool(sep and rest) and set(rest.lower()) <= allowed


def policy_for(response: HttpResponse) -> str:
    extra = getattr(response, "_csp_extra", {})
    parts = []
    for directive, sources in POLICY.items():
        added = [s for s in dict.fromkeys(extra.get(directive, ())) if s not in sources]
        parts.append(" ".join((directive, *sources, *added)))
    return "; ".join(parts)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # The setting first: with it off (the default) no page reads the session here.
        session = getattr(request, "session", None)
        if (
            signin.signs_out_at_provider()
            and session is not None
            and session.get(signin.PROVIDER_SIGN_OUT_KEY)
        ):
            # Every page's sign-out form may go on to the identity provider's end-session
            # page (the sign-out view redirects there).
            allow(response, "form-action", [signin.issuer_origin()])
        if HEADER not in response:
            response[HEADER] = policy_for(response)
        return response
