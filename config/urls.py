from django.contrib import admin
from django.urls import include, path

from config import health, metrics, views

handler403 = "config.views.permission_denied"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("healthz", health.HealthView.as_view(), name="healthz"),
    path("readyz", health.ReadinessView.as_view(), name="readyz"),
    path("metrics", metrics.MetricsView.as_view(), name="metrics"),
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/logout/", views.SignOutView.as_view(), name="logout"),
    path("global/registries/", include("registries.urls")),
    path("", include("charts.urls")),
    path("global/", include("clusters.urls")),
    # Wharf's own screens in config/ (Django's auth keeps its top-level names above).
    path(
        "global/audit/",
        include(([path("", views.AuditLogView.as_view(), name="auditentry_list")], "config")),
    ),
    path("api/v1/", include("api.urls")),
    path("account/", include("api.account_urls")),
    path("admin/", admin.site.urls),
]
