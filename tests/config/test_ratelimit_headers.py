"""Reading rate limits from response headers (config/ratelimit.py), in every form servers use."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from requests.structures import CaseInsensitiveDict

from config.ratelimit import (
    MAX_THROTTLE_RETRIES,
    RateLimitReading,
    parse_retry_after,
    read_rate_limit,
    retry_wait,
    worth_retrying,
)

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


def read(headers: dict, status: int = 200) -> RateLimitReading | None:
    return read_rate_limit(CaseInsensitiveDict(headers), status, now=NOW)


def test_docker_hubs_form_gives_limit_remaining_and_window():
    reading = read({"ratelimit-limit": "100;w=21600", "ratelimit-remaining": "76;w=21600"})
    assert reading == RateLimitReading(limit=100, remaining=76, window=21600.0)


def test_the_early_draft_form_gives_the_reset_in_seconds():
    reading = read({"RateLimit-Limit": "10", "RateLimit-Remaining": "9", "RateLimit-Reset": "7"})
    assert (reading.limit, reading.remaining, reading.window, reading.reset_after) == (
        10, 9, None, 7.0,
    )  # fmt: skip


def test_a_limit_listing_quota_policies_takes_the_window_of_the_one_in_force():
    reading = read({"RateLimit-Limit": "50, 10;w=1, 50;w=60", "RateLimit-Remaining": "3"})
    assert (reading.limit, reading.remaining, reading.window) == (50, 3, 60.0)


def test_the_policy_field_of_drafts_four_to_six_gives_the_window():
    reading = read(
        {"RateLimit-Limit": "10", "RateLimit-Remaining": "1", "RateLimit-Policy": "10;w=1, 50;w=60"}
    )
    assert reading.window == 1.0


def test_draft_seven_dictionary_form():
    reading = read({"RateLimit": "limit=10, remaining=1, reset=7", "RateLimit-Policy": "10;w=60"})
    assert reading == RateLimitReading(limit=10, remaining=1, window=60.0, reset_after=7.0)


def test_named_policies_of_draft_eight_on_report_the_one_closest_to_running_out():
    reading = read(
        {
            "RateLimit-Policy": '"burst";q=100;w=60, "daily";q=1000;w=86400',
            "RateLimit": '"burst";r=80;t=30, "daily";r=5;t=3600',
        }
    )
    assert reading == RateLimitReading(limit=1000, remaining=5, window=86400.0, reset_after=3600.0)


def test_x_ratelimit_headers_with_a_unix_time_reset():
    reset_at = int(NOW.timestamp()) + 90
    reading = read(
        {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999",
         "X-RateLimit-Reset": str(reset_at)}
    )  # fmt: skip
    assert (reading.limit, reading.remaining, reading.reset_after) == (5000, 4999, 90.0)


def test_a_429_with_retry_after_is_throttled_and_says_how_long():
    reading = read({"Retry-After": "120"}, status=429)
    assert reading == RateLimitReading(retry_after=120.0, throttled=True)


def test_a_429_without_retry_after_is_throttled_all_the_same():
    assert read({}, status=429) == RateLimitReading(throttled=True)


def test_a_503_is_throttled_only_when_it_asks_to_retry_later():
    assert read({}, status=503) is None
    assert read({"Retry-After": "5"}, status=503).throttled


def test_a_retry_after_on_a_success_is_not_a_throttle():
    assert read({"Retry-After": "5"}, status=200) is None


def test_a_response_without_rate_limit_headers_says_nothing():
    assert read({"Content-Type": "application/json"}) is None


@pytest.mark.parametrize(
    "headers",
    [
        {"RateLimit-Limit": "lots", "RateLimit-Remaining": "-3"},
        {"RateLimit": "garbage;;;===,,,"},
        {"RateLimit": '"p";r=abc', "RateLimit-Policy": '"p";q='},
    ],
)
def test_unreadable_numbers_are_unknown_not_an_error(headers):
    reading = read(headers)
    assert reading is None or (reading.remaining is None and not reading.throttled)


# --- Retry-After ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("Sun, 01 Mar 2026 12:02:30 GMT", 150.0),  # IMF-fixdate
        ("Sunday, 01-Mar-26 12:01:00 GMT", 60.0),  # the obsolete RFC 850 form
        ("Sun Mar  1 12:05:00 2026", 300.0),  # asctime's, read as GMT
        ("Sun, 01 Mar 2026 13:00:00 +0100", 0.0),  # a zone other than GMT: still exact
        ("Sun, 01 Mar 2026 12:00:42 GMT", 42.0),  # not "one minute"
        ("Sun, 01 Mar 2026 11:00:00 GMT", 0.0),  # past
        ("tomorrow", 60.0),
    ],
)
def test_retry_after_in_seconds_and_as_an_http_date(value, seconds):
    assert parse_retry_after(value, now=NOW) == pytest.approx(seconds)


def test_an_http_date_retry_after_on_a_429_is_read_exactly():
    reading = read({"Retry-After": "Sun, 01 Mar 2026 12:03:20 GMT"}, status=429)
    assert reading.retry_after == pytest.approx(200.0)


# --- retrying ------------------------------------------------------------------------


def test_the_wait_before_a_retry_is_the_retry_after_plus_jitter():
    reading = RateLimitReading(retry_after=4.0, throttled=True)
    waits = {retry_wait(reading, 1) for _ in range(20)}
    assert all(4.0 <= w <= 5.0 for w in waits)
    assert len(waits) > 1  # jittered: not the same instant for every caller


def test_without_retry_after_the_wait_doubles():
    reading = RateLimitReading(throttled=True)
    assert 1.0 <= retry_wait(reading, 1) < 1.3
    assert 4.0 <= retry_wait(reading, 3) < 5.1


def test_a_retry_is_only_worth_it_within_the_deadline_and_at_most_three_times():
    throttled = RateLimitReading(retry_after=2.0, throttled=True)
    later = time.monotonic() + 30
    assert worth_retrying(throttled, 1, 2.0, later)
    assert worth_retrying(throttled, MAX_THROTTLE_RETRIES, 2.0, later)
    assert not worth_retrying(throttled, MAX_THROTTLE_RETRIES + 1, 2.0, later)
    assert not worth_retrying(throttled, 1, 29.5, time.monotonic() + 29)  # past the deadline
    assert not worth_retrying(throttled, 1, 120.0, time.monotonic() + 600)  # too long to hold
    assert not worth_retrying(RateLimitReading(remaining=3), 1, 0.0, later)


def test_a_retry_after_of_more_digits_than_a_clock_holds_is_a_day():
    assert parse_retry_after("999999999999999999999", now=NOW) == 24 * 3600.0
