"""Failed API authentication logs no token text, whatever it was."""

from __future__ import annotations

import logging

import pytest

from api.models import issue_token
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db


def test_a_failed_token_leaves_no_token_text_in_the_log(users, caplog):
    caplog.set_level(logging.DEBUG)
    token = issue_token(next(iter(users.values())), "ci")[1]
    wrong = token[:-4] + "zzzz"
    guessed = "wharf_" + "s3cr3t-guess-" * 4

    for text in (wrong, guessed, "not even a token"):
        response = bearer(text).get("/api/v1/charts/")
        assert response.status_code == 401
        assert text not in response.content.decode()

    assert wrong not in caplog.text and guessed not in caplog.text
    assert token not in caplog.text
