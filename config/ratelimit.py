"""What a server says about its rate limit, read from the headers of any response.

Framework-free, like :mod:`config.http`, which calls :func:`read_rate_limit` on every
response it receives and :func:`retry_wait` when one says "too many requests". The forms
understood:

- Docker Hub's: ``RateLimit-Limit: 100;w=21600`` and ``RateLimit-Remaining: 76;w=21600``
  (the window in seconds after ``w=``; no reset given);
- the IETF draft's early form (drafts 00-06): ``RateLimit-Limit: 10`` (or a list of
  quota policies, ``10, 10;w=1, 50;w=60``, the first being the one in force),
  ``RateLimit-Remaining: 9``, ``RateLimit-Reset: 7`` (seconds), with ``RateLimit-Policy:
  10;w=1`` for the window; the same with the older ``X-RateLimit-`` prefix, whose reset
  some servers give as a Unix time instead;
- the draft's ``RateLimit`` field: draft 07's dictionary ``RateLimit: limit=10,
  remaining=1, reset=7``, and from draft 08 on a list of named policies, ``RateLimit:
  "default";r=1;t=7`` beside ``RateLimit-Policy: "default";q=10;w=60``;
- ``Retry-After``, in seconds or as an HTTP date (any of the three forms RFC 9110 allows).

With several policies, the one closest to running out is the one reported: that is the
one that throttles first.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

MAX_RETRY_AFTER = 24 * 3600.0  # a server asking for longer is waited on for a day at most
UNREADABLE_RETRY_AFTER = 60.0  # a Retry-After in neither form: the server did ask to wait
# However many digits: every number read is clamped (a wait to a day, a count to MAX_COUNT).
_DECIMAL = re.compile(r"^\d+(?:\.\d+)?$")
# Counts and windows are kept in 32-bit columns: a server naming more is taken at this.
MAX_COUNT = 2**31 - 1
# A reset larger than this is a point in time (Unix seconds), not a number of seconds.
_EPOCH_THRESHOLD = 10**9


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """``Retry-After`` in seconds: the delta form ("120") or an HTTP date.

    None without a header. A date in the past is 0. A value in neither form counts as one
    minute (the server did ask us to wait); nothing is longer than a day. The HTTP date may
    be the IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``), the obsolete RFC 850 form
    (``Sunday, 06-Nov-94 08:49:37 GMT``) or asctime's (``Sun Nov  6 08:49:37 1994``, read
    as GMT: RFC 9110 dates are GMT).
    """
    if not value or not value.strip():
        return None
    value = value.strip()
    if _DECIMAL.match(value):
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return UNREADABLE_RETRY_AFTER
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    seconds = (when - (now or dt.datetime.now(dt.UTC))).total_seconds()
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


@dataclass(frozen=True)
class RateLimitReading:
    """What one response said about the client's rate limit; None where it said nothing.

    ``window`` and ``reset_after`` are seconds (the reset counted from when the response
    came); ``retry_after`` is a 429's (or 503's) ``Retry-After``; ``throttled`` says the
    response itself was a refusal to serve (429, or 503 with ``Retry-After``).
    """

    limit: int | None = None
    remaining: int | None = None
    window: float | None = None
    reset_after: float | None = None
    retry_after: float | None = None
    throttled: bool = False

    @property
    def has_budget(self) -> bool:
        """Whether it told how much is left (not only that it refused)."""
        return self.remaining is not None


@dataclass(frozen=True)
class _Quota:
    name: str
    amount: int | None  # the limit ("q", or the bare number of the early forms)
    remaining: int | None
    window: float | None
    reset: float | None


def _split_list(value: str) -> list[str]:
    """The members of a comma-separated field, commas inside quotes kept."""
    members: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            members.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    members.append("".join(current).strip())
    return [m for m in members if m]


def _member(text: str) -> tuple[str, dict[str, str]]:
    """``"name";q=10;w=60`` or ``10;w=60``: the item and its parameters (names lower case)."""
    parts = [p.strip() for p in text.split(";")]
    item = parts[0].strip('"')
    params = {}
    for part in parts[1:]:
        key, _, val = part.partition("=")
        if key:
            params[key.strip().lower()] = val.strip().strip('"')
    return item, params


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    text = text.strip()
    if not _DECIMAL.match(text):
        return None
    return min(float(text), float(MAX_COUNT))


def _count(text: str | None) -> int | None:
    number = _number(text)
    return int(number) if number is not None else None


def _reset_seconds(text: str | None, now: float) -> float | None:
    """A reset in seconds from now; a Unix time (``X-RateLimit-Reset`` on some servers) too."""
    number = _number(text)
    if number is None:
        return None
    if number > _EPOCH_THRESHOLD:
        number = number - now
    return min(max(0.0, number), MAX_RETRY_AFTER)


def _policies(value: str) -> dict[str, _Quota]:
    """``RateLimit-Policy``, early (``10;w=1, 50;w=60``) or named (``"p";q=10;w=60``)."""
    quotas = {}
    for index, text in enumerate(_split_list(value)):
        item, params = _member(text)
        amount = _count(params.get("q")) if "q" in params else _count(item)
        name = item if "q" in params else str(index)
        quotas[name] = _Quota(name, amount, None, _number(params.get("w")), None)
    return quotas


def _structured_field(value: str, policies: dict[str, _Quota], now: float) -> _Quota | None:
    """The ``RateLimit`` field of drafts 07 (a dictionary) and 08 on (named policies)."""
    members = _split_list(value)
    pairs = [m.partition("=") for m in members]
    if members and all(sep and key.strip().lower() in ("limit", "remaining", "reset")
                       for key, sep, _ in pairs):  # fmt: skip
        fields = {key.strip().lower(): val.strip() for key, _, val in pairs}
        amount = _count(fields.get("limit"))
        # Draft 07 names no policy: the window is the one whose quota is this limit.
        window = next((q.window for q in policies.values() if q.amount == amount), None)
        if window is None and len(policies) == 1:
            window = next(iter(policies.values())).window
        return _Quota(
            "", amount, _count(fields.get("remaining")), window,
            _reset_seconds(fields.get("reset"), now),
        )  # fmt: skip
    quotas = []
    for text in members:
        name, params = _member(text)
        policy = policies.get(name)
        quotas.append(
            _Quota(
                name,
                policy.amount if policy else None,
                _count(params.get("r")),
                policy.window if policy else None,
                _reset_seconds(params.get("t"), now),
            )
        )
    return _tightest(quotas)


def _tightest(quotas: list[_Quota]) -> _Quota | None:
    """The quota that runs out first: the fewest left (then the smallest share left)."""
    known = [q for q in quotas if q.remaining is not None]
    if not known:
        return quotas[0] if quotas else None
    return min(known, key=lambda q: (q.remaining, (q.remaining or 0) / (q.amount or 1)))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value.strip() if isinstance(value, str) and value.strip() else None


def _early_form(headers: Mapping[str, str], prefix: str, now: float) -> _Quota | None:
    """``RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (and the ``X-`` ones)."""
    limit = _header(headers, f"{prefix}Limit")
    remaining = _header(headers, f"{prefix}Remaining")
    if limit is None and remaining is None:
        return None
    window = None
    amount = None
    if limit is not None:
        members = _split_list(limit)
        if members:
            item, params = _member(members[0])
            amount = _count(item)
            window = _number(params.get("w"))
            if window is None:  # "10, 10;w=1": the window of the policy with that quota
                for text in members[1:]:
                    other, other_params = _member(text)
                    if _count(other) == amount and "w" in other_params:
                        window = _number(other_params["w"])
                        break
    left = None
    if remaining is not None:
        members = _split_list(remaining)
        if members:
            item, params = _member(members[0])
            left = _count(item)
            window = window if window is not None else _number(params.get("w"))
    if window is None:
        policy = _header(headers, f"{prefix}Policy")
        if policy is not None:
            window = next(
                (q.window for q in _policies(policy).values() if q.amount == amount), None
            )
    reset = _reset_seconds(_header(headers, f"{prefix}Reset"), now)
    return _Quota("", amount, left, window, reset)


def read_rate_limit(
    headers: Mapping[str, str], status: int | None = None, *, now: dt.datetime | None = None
) -> RateLimitReading | None:
    """What ``headers`` (of a response with ``status``) say about the rate limit, or None
    when they say nothing about it. ``headers`` is any mapping; ``requests``' is
    case-insensitive, a plain dict is looked up as given and in lower case."""
    clock = (now or dt.datetime.now(dt.UTC)).timestamp()
    quota = None
    field = _header(headers, "RateLimit")
    if field is not None:
        policy = _header(headers, "RateLimit-Policy")
        quota = _structured_field(field, _policies(policy) if policy else {}, clock)
    if quota is None:
        quota = _early_form(headers, "RateLimit-", clock)
    if quota is None:
        quota = _early_form(headers, "X-RateLimit-", clock)
    retry_after = None
    throttled = False
    if status in (429, 503):
        retry_after = parse_retry_after(_header(headers, "Retry-After"), now=now)
        throttled = status == 429 or retry_after is not None
    if quota is None and not throttled:
        return None
    return RateLimitReading(
        limit=quota.amount if quota else None,
        remaining=quota.remaining if quota else None,
        window=quota.window if quota else None,
        reset_after=quota.reset if quota else None,
        retry_after=retry_after,
        throttled=throttled,
    )


# --- retrying a 429 ---------------------------------------------------------------------

MAX_THROTTLE_RETRIES = 3
THROTTLE_BACKOFF = 1.0  # seconds before the first retry of a 429 that says no Retry-After
# A longer wait is not slept through in the middle of a request: the 429 goes back to the
# caller (a sync is then held back for that time, freeing its worker).
MAX_INLINE_WAIT = 10.0


def retry_wait(reading: RateLimitReading, attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, 3) of a refused request: the
    server's ``Retry-After`` (else a doubling backoff), plus jitter, so that the threads
    and workers refused together do not all come back at the same instant."""
    base = reading.retry_after
    if base is None:
        base = reading.reset_after if reading.reset_after is not None else None
    if base is None:
        base = THROTTLE_BACKOFF * 2 ** (attempt - 1)
    return base + random.uniform(0, max(0.05, min(base * 0.25, 2.0)))  # noqa: S311 (jitter)


def worth_retrying(reading: RateLimitReading | None, attempt: int, wait: float,
                   expires_at: float) -> bool:  # fmt: skip
    """Whether a refused request is tried again: at most :data:`MAX_THROTTLE_RETRIES`
    times, after a wait of at most :data:`MAX_INLINE_WAIT`, and only if it can still
    finish within its deadline (``expires_at``, a ``time.monotonic()`` value) after
    waiting ``wait`` seconds."""
    if reading is None or not reading.throttled or attempt > MAX_THROTTLE_RETRIES:
        return False
    if wait > MAX_INLINE_WAIT:
        return False
    left = expires_at - time.monotonic()
    # The retry itself needs time too: a wait that leaves under a second is not worth it.
    return wait + 1.0 < left
