"""The client's address, for counting failed sign-ins (django-axes calls :func:`client_ip`).

Behind no proxy it is the socket's peer, REMOTE_ADDR: an X-Forwarded-For header is then
written by the client itself and must not be believed, or an attacker would give every
guess a new address. With ``WHARF_TRUSTED_PROXIES = N`` (Wharf behind N proxies that each
append the address they saw), the client is the N-th address from the right of
X-Forwarded-For; what lies left of it was written by the client and is ignored.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    peer = request.META.get("REMOTE_ADDR", "")
    proxies = settings.WHARF_TRUSTED_PROXIES
    if proxies <= 0:
        return peer
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [h for h in hops if h]
    if len(hops) < proxies:
        return peer  # not sent through the proxies the setting names
    candidate = hops[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer
