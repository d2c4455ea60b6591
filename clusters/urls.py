"""Included under global/: clusters, environments, and a registry's credential access
(``clusters:<model>_<action>``)."""

from django.urls import path

from clusters import pulltest_views, views

app_name = "clusters"

urlpatterns = [
    path("clusters/", views.ClusterListView.as_view(), name="cluster_list"),
    path("clusters/add/", views.ClusterEditView.as_view(), name="cluster_add"),
    path("clusters/<int:pk>/", views.ClusterEditView.as_view(), name="cluster_edit"),
    path("clusters/<int:pk>/delete/", views.ClusterDeleteView.as_view(), name="cluster_delete"),
    path("clusters/<int:pk>/status/", views.ClusterStatusView.as_view(), name="cluster_status"),
    path(
        "clusters/<int:pk>/reconcile/",
        views.ClusterReconcileView.as_view(),
        name="cluster_reconcile",
    ),
    path(
        "clusters/<int:pk>/reconciles/",
        views.ReconcileRunListView.as_view(),
        name="reconcilerun_list",
    ),
    path(
        "clusters/<int:pk>/pull-test/",
        pulltest_views.ClusterPullTestView.as_view(),
        name="cluster_pulltest",
    ),
    path(
        "targets/<int:pk>/pull-test/",
        pulltest_views.TargetPullTestView.as_view(),
        name="pullsecrettarget_pulltest",
    ),
    path("environments/", views.EnvironmentListView.as_view(), name="environment_list"),
    path("environments/add/", views.EnvironmentEditView.as_view(), name="environment_add"),
    path("environments/<int:pk>/", views.EnvironmentEditView.as_view(), name="environment_edit"),
    path(
        "environments/<int:pk>/delete/",
        views.EnvironmentDeleteView.as_view(),
        name="environment_delete",
    ),
    path(
        "registries/<int:pk>/access/",
        views.RegistryAccessView.as_view(),
        name="registryaccess_edit",
    ),
    path(
        "registries/<int:pk>/access/coverage/",
        views.RegistryAccessCoverageView.as_view(),
        name="registryaccess_coverage",
    ),
    path(
        "registries/<int:pk>/access/status/",
        views.RegistryAccessStatusView.as_view(),
        name="registryaccess_status",
    ),
]
