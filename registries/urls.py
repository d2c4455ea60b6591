"""Container/OCI Registry screens, named ``registries:registry_<action>``."""

from django.urls import path

from registries import views

app_name = "registries"

urlpatterns = [
    path("", views.RegistryListView.as_view(), name="registry_list"),
    path("add/", views.RegistryEditView.as_view(), name="registry_add"),
    path("<int:pk>/", views.RegistryEditView.as_view(), name="registry_edit"),
    path("<int:pk>/delete/", views.RegistryDeleteView.as_view(), name="registry_delete"),
    path(
        "<int:pk>/default/", views.RegistryMakeDefaultView.as_view(), name="registry_make_default"
    ),
]
