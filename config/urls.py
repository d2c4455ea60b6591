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
    path("global/audit/", views.AuditLogView.as_view(), name="audit_log"),
    path("admin/", admin.site.urls),
]
