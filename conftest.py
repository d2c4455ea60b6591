"""Users for every test: a superuser, a plain signed-in user, and anonymous."""

import pytest


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", password="root-password-1")


@pytest.fixture
def plain_user(django_user_model):
    return django_user_model.objects.create_user("viewer", password="viewer-password-1")


@pytest.fixture
def user_client(client, plain_user):
    client.force_login(plain_user)
    return client
