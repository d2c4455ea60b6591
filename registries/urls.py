from django.urls import path

from registries import views

app_name = "registries"

urlpatterns = [
    path("", views.RegistryListView.as_view(), name="list"),
    path("add/", views.RegistryEditView.as_view(), name="add"),
    path("<int:pk>/", views.RegistryEditView.as_view(), name="edit"),
    path("<int:pk>/delete/", views.RegistryDeleteView.as_view(), name="delete"),
    path("<int:pk>/default/", views.RegistryMakeDefaultView.as_view(), name="make_default"),
]
