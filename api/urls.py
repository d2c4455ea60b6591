"""``/api/v1/``: the resources, the OpenAPI schema and its browsable docs (``api:<name>``)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter
from rest_framework.settings import api_settings

from api import views
from api.base import ApiViewMixin
from api.permissions import RolePermission
from config.roles import VIEWER

app_name = "api"


class SchemaView(ApiViewMixin, SpectacularAPIView):
    """The OpenAPI 3 schema: for anyone signed in (a session or a token)."""

    read_role = VIEWER
    authentication_classes = api_settings.DEFAULT_AUTHENTICATION_CLASSES
    permission_classes = [RolePermission]


class DocsView(ApiViewMixin, SpectacularSwaggerSplitView):
    """Swagger UI, served from Wharf's own static files (drf-spectacular-sidecar)."""

    read_role = VIEWER
    authentication_classes = api_settings.DEFAULT_AUTHENTICATION_CLASSES
    permission_classes = [RolePermission]
    url_name = "api:schema"
    template_name = "api/swagger_ui.html"


class Router(DefaultRouter):
    include_root_view = False
    include_format_suffixes = False


router = Router(trailing_slash="/")
router.register("registries", views.RegistryViewSet, basename="registry")
router.register("pushes", views.ChartPushViewSet, basename="chartpush")
router.register("chart-repositories", views.HelmRepositoryViewSet, basename="helmrepository")
router.register("chart-sources", views.ChartSourceViewSet, basename="chartsource")
router.register("charts", views.ChartViewSet, basename="chart")
router.register(
    r"charts/(?P<chart_pk>[0-9]{1,18})/versions", views.ChartVersionViewSet, basename="chartversion"
)
router.register("clusters", views.ClusterViewSet, basename="cluster")
router.register("environments", views.EnvironmentViewSet, basename="environment")
router.register("targets", views.PullSecretTargetViewSet, basename="pullsecrettarget")

access = views.RegistryAccessViewSet.as_view({"get": "retrieve", "put": "update"})

urlpatterns = [
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", DocsView.as_view(), name="docs"),
    path("registries/<str:registry_name>/access/", access, name="registryaccess"),
    path("", include(router.urls)),
]
