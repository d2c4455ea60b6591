"""Included under global/: clusters, environments, and a registry's credential access."""

from django.urls import path

from clusters import views

app_name = "clusters"

urlpatterns = [
    path("clusters/", views.ClusterListView.as_view(), name="list"),
    path("clusters/add/", views.ClusterEditView.as_view(), name="add"),
    path("clusters/<int:pk>/", views.ClusterEditView.as_view(), name="edit"),
    path("clusters/<int:pk>/delete/", views.ClusterDeleteView.as_view(), name="delete"),
    path("clusters/<int:pk>/status/", views.ClusterStatusView.as_view(), name="status"),
    path("clusters/<int:pk>/reconcile/", views.ClusterReconcileView.as_view(), name="reconcile"),
    path("environments/", views.EnvironmentListView.as_view(), name="environments"),
    path("environments/add/", views.EnvironmentEditView.as_view(), name="environment_add"),
    path("environments/<int:pk>/", views.EnvironmentEditView.as_view(), name="environment_edit"),
    path(
        "environments/<int:pk>/delete/",
        views.EnvironmentDeleteView.as_view(),
        name="environment_delete",
    ),
    path("registries/<int:pk>/access/", views.RegistryAccessView.as_view(), name="registry_access"),
    path(
        "registries/<int:pk>/access/status/",
        views.RegistryAccessStatusView.as_view(),
        name="registry_access_status",
    ),
]
