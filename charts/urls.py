from django.urls import path

from charts import views

app_name = "charts"

urlpatterns = [
    path("charts/", views.ChartStoreView.as_view(), name="store"),
    path("charts/<int:pk>/", views.ChartView.as_view(), name="chart"),
    path(
        "charts/<int:pk>/versions/<int:version_pk>/files/",
        views.ChartFilesView.as_view(),
        name="chartversion_files",
    ),
    path(
        "global/chart-repositories/",
        views.HelmRepositoryListView.as_view(),
        name="repository_list",
    ),
    path(
        "global/chart-repositories/add/",
        views.HelmRepositoryEditView.as_view(),
        name="repository_add",
    ),
    path(
        "global/chart-repositories/<int:pk>/",
        views.HelmRepositoryEditView.as_view(),
        name="repository_edit",
    ),
    path(
        "global/chart-repositories/<int:pk>/delete/",
        views.HelmRepositoryDeleteView.as_view(),
        name="repository_delete",
    ),
    path("global/registries/<int:pk>/push/", views.ChartPushView.as_view(), name="push"),
    path("global/registries/<int:pk>/pushes/", views.ChartPushListView.as_view(), name="pushes"),
    path("global/chart-sources/", views.ChartSourceListView.as_view(), name="source_list"),
    path("global/chart-sources/<int:pk>/", views.ChartSourceView.as_view(), name="source"),
    path(
        "global/chart-sources/<int:pk>/runs/",
        views.ChartSourceRunsView.as_view(),
        name="source_runs",
    ),
    path(
        "global/chart-sources/<int:pk>/sync/",
        views.ChartSourceSyncView.as_view(),
        name="source_sync",
    ),
]
