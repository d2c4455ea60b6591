"""Included under global/signing-keys/ (``trust:signingkey_<action>``)."""

from django.urls import path

from trust import views

app_name = "trust"

urlpatterns = [
    path("", views.SigningKeyListView.as_view(), name="signingkey_list"),
    path("add/", views.SigningKeyEditView.as_view(), name="signingkey_add"),
    path("<int:pk>/", views.SigningKeyEditView.as_view(), name="signingkey_edit"),
    path("<int:pk>/delete/", views.SigningKeyDeleteView.as_view(), name="signingkey_delete"),
]
