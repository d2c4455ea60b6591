from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path

from config import views

handler403 = "config.views.permission_denied"

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "accounts/login/",
        login_not_required(auth_views.LoginView.as_view(redirect_authenticated_user=True)),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("global/registries/", include("registries.urls")),
    path("", include("charts.urls")),
    path("global/", include("clusters.urls")),
    # Wharf's own screens in config/ (Django's auth keeps its top-level names above).
    path(
        "global/audit/",
        include(([path("", views.AuditLogView.as_view(), name="auditentry_list")], "config")),
    ),
    path("admin/", admin.site.urls),
]
