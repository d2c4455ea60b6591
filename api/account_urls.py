"""``/account/``: the signed-in user's profile and API tokens (``account:<name>``)."""

from django.urls import path

from api import account

app_name = "account"

urlpatterns = [
    path("", account.ProfileView.as_view(), name="profile"),
    path("tokens/revoke/", account.RevokeTokenView.as_view(), name="apitoken_revoke"),
]
