from django.contrib import admin
from django.urls import include, path

from config import health, metrics, views

handler403 = "config.views.permission_denied"

# Wharf's own screens in config/, under global/ (Django's auth keeps its top-level names).
config_patterns = [
    path("audit/", views.AuditLogView.as_view(), name="auditentry_list"),
    path("roles/", views.RoleListView.as_view(), name="roles"),
    path("roles/users/add/", views.UserRoleEditView.as_view(), name="userrole_add"),
    path("roles/users/<int:pk>/", views.UserRoleEditView.as_view(), name="userrole_edit"),
    path(
        "roles/users/<int:pk>/delete/",
        views.UserRoleDeleteView.as_view(),
        name="userrole_delete",
    ),
    path("roles/groups/add/", views.GroupRoleEditView.as_view(), name="grouprole_add"),
    path("roles/groups/<int:pk>/", views.GroupRoleEditView.as_view(), name="grouprole_edit"),
    path(
        "roles/groups/<int:pk>/delete/",
        views.GroupRoleDeleteView.as_view(),
        name="grouprole_delete",
    ),
]

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("healthz", health.HealthView.as_view(), name="healthz"),
    path("readyz", health.ReadinessView.as_view(), name="readyz"),
    path("metrics", metrics.MetricsView.as_view(), name="metrics"),
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/logout/", views.SignOutView.as_view(), name="logout"),
    path("accounts/sso/begin/", views.OidcBeginView.as_view(), name="oidc_begin"),
    path("accounts/sso/complete/", views.OidcCompleteView.as_view(), name="oidc_complete"),
    path("global/registries/", include("registries.urls")),
    path("", include("charts.urls")),
    path("global/", include("clusters.urls")),
    path("global/signing-keys/", include("trust.urls")),
    path("global/", include((config_patterns, "config"))),
    path("api/v1/", include("api.urls")),
    path("account/", include("api.account_urls")),
    path("admin/", admin.site.urls),
]
