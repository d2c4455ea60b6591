"""The Chart Store, Helm repositories, chart sources and pushes: ``charts:<model>_<action>``."""

from django.urls import path

from charts import views

app_name = "charts"

urlpatterns = [
    path("charts/", views.ChartStoreView.as_view(), name="chart_list"),
    path("charts/<int:pk>/", views.ChartView.as_view(), name="chart_detail"),
    path(
        "charts/<int:pk>/values-diff/",
        views.ChartValuesDiffView.as_view(),
        name="chart_values_diff",
    ),
    path(
        "charts/<int:pk>/versions/<int:version_pk>/files/",
        views.ChartFilesView.as_view(),
        name="chartversion_files",
    ),
    path(
        "global/chart-repositories/",
        views.HelmRepositoryListView.as_view(),
        name="helmrepository_list",
    ),
    path(
        "global/chart-repositories/add/",
        views.HelmRepositoryEditView.as_view(),
        name="helmrepository_add",
    ),
    path(
        "global/chart-repositories/<int:pk>/",
        views.HelmRepositoryEditView.as_view(),
        name="helmrepository_edit",
    ),
    path(
        "global/chart-repositories/<int:pk>/delete/",
        views.HelmRepositoryDeleteView.as_view(),
        name="helmrepository_delete",
    ),
    path("global/registries/<int:pk>/push/", views.ChartPushView.as_view(), name="chartpush_add"),
    path(
        "global/registries/<int:pk>/pushes/",
        views.ChartPushListView.as_view(),
        name="chartpush_list",
    ),
    path("global/chart-sources/", views.ChartSourceListView.as_view(), name="chartsource_list"),
    path(
        "global/chart-sources/<int:pk>/",
        views.ChartSourceView.as_view(),
        name="chartsource_detail",
    ),
    path(
        "global/chart-sources/<int:pk>/runs/",
        views.ChartSourceRunsView.as_view(),
        name="chartsource_runs",
    ),
    path(
        "global/chart-sources/<int:pk>/trust/",
        views.ChartSourceTrustView.as_view(),
        name="chartsource_trust",
    ),
    path(
        "global/chart-sources/<int:pk>/sync/",
        views.ChartSourceSyncView.as_view(),
        name="chartsource_sync",
    ),
]
