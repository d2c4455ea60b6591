"""Wharf settings, read from the environment (django-environ).

Embedded defaults let a new user run Wharf with nothing but Python: SQLite under
``var/`` and a Celery broker on the filesystem. Production sets ``DATABASE_URL``
(PostgreSQL), ``REDIS_URL`` (Redis broker), ``SECRET_KEY`` and
``WHARF_ENCRYPTION_KEYS``. Every variable is listed in ``.env.example``.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from config import ldapconfig
from config.keys import dev_fernet_key, dev_secret

BASE_DIR = Path(__file__).resolve().parent.parent


class _SecretFiles(environ.FileAwareMapping):
    """The environment, where ``<NAME>_FILE`` names a file holding ``<NAME>`` (a Kubernetes
    Secret mounted as a file); the newline an editor or ``echo`` leaves at its end is not
    part of the value."""

    def __getitem__(self, key: str) -> str:
        value = super().__getitem__(key)
        return value.rstrip("\r\n") if self.env.get(key + "_FILE") else value


environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
# Every setting can also come from a file: SECRET_KEY_FILE, WHARF_ENCRYPTION_KEYS_FILE,
# DATABASE_URL_FILE, REDIS_URL_FILE, WHARF_ADMIN_PASSWORD_FILE, …
env = environ.FileAwareEnv()
# Not cached: a command that reads a setting when it runs (ensure_admin's password) sees
# the file or variable as it is then, not as the first read found it.
env.ENVIRON = _SecretFiles(cache=False)

VAR_DIR = Path(env.str("WHARF_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)


def _required_secret(name: str, dev_file: str, make) -> str:
    """A secret from the environment; in development, one generated once under var/."""
    value = env.str(name, default="")
    if value:
        return value
    if not DEBUG:
        raise ImproperlyConfigured(
            f"{name} is not set. Wharf refuses to start with DEBUG off and no {name}: "
            f"set it in the environment (see .env.example), or set DEBUG=1 for development, "
            f"where one is generated once under var/."
        )
    return make(VAR_DIR / dev_file)


SECRET_KEY = _required_secret("SECRET_KEY", "secret_key", dev_secret)
# Comma-separated Fernet keys: the first encrypts, all decrypt (rotation).
WHARF_ENCRYPTION_KEYS = [
    k.strip()
    for k in _required_secret("WHARF_ENCRYPTION_KEYS", "encryption_key", dev_fernet_key).split(",")
    if k.strip()
]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Before staticfiles: Wharf's runserver (refusing to serve with DEBUG off) is the one
    # manage.py finds, as the first app with a command of that name wins.
    "config.apps.WharfConfig",
    "django.contrib.staticfiles",
    "django_htmx",
    "axes",
    # OpenID Connect sign-in (config/signin.py): its tables link a provider's subject to a user.
    "social_django",
    "registries",
    "clusters",
    "charts",
    "trust",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "config.roles.template_context",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'wharf.sqlite3'}")}
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    # Persistent connections (checked before reuse) instead of one per request.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("WHARF_DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the worker and beat share one SQLite file: WAL lets readers
    # and one writer work at once, IMMEDIATE transactions plus a busy timeout make
    # writers queue instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# --- Sign-in throttling (django-axes) -------------------------------------------------
# Failed sign-ins are counted per client address; at the limit that address is locked out
# for a while (an admin can clear it sooner: Django admin → Axes, or `manage.py
# axes_reset_ip ADDRESS`). The address is REMOTE_ADDR, unless WHARF_TRUSTED_PROXIES says
# how many proxies in front of Wharf append to X-Forwarded-For (config/clientip.py).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "config.signin.LocalAccountBackend",
    # LDAP and OpenID Connect are added below when configured.
]
WHARF_TRUSTED_PROXIES = env.int("WHARF_TRUSTED_PROXIES", default=0)
AXES_FAILURE_LIMIT = env.int("WHARF_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("WHARF_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "config.clientip.client_ip"
AXES_LOCKOUT_CALLABLE = "config.views.signin_locked_out"

# --- Roles (config/roles.py) ------------------------------------------------------------
# Group-to-role mappings applied at every `migrate` (so at every start-up): a group named
# here gets that role (made if missing, its role set again if changed on the screen), e.g.
# "platform-admins=admin,deployers=operator". Other mappings are left as they are.
WHARF_ROLE_GROUPS = env.str("WHARF_ROLE_GROUPS", default="")
# On: a signed-in user with no role (none granted, no mapped group) sees only a page saying
# whom to ask. Off (the default): such users are viewers (the Chart Store).
WHARF_REQUIRE_ROLE = env.bool("WHARF_REQUIRE_ROLE", default=False)
# Whom that page tells them to ask (e.g. "the platform team, #platform on chat"); empty:
# the usernames of Wharf's admins.
WHARF_ROLE_CONTACT = env.str("WHARF_ROLE_CONTACT", default="")

# --- HTTP API (api/, Django REST Framework) ---------------------------------------------
# Personal tokens (Authorization: Bearer) for automation; the session of a signed-in user
# for the browsable docs, its writes CSRF-checked. Roles are config.roles'.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.BearerTokenAuthentication",
        "api.authentication.CsrfSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.RolePermission"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Pagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Wharf API",
    "DESCRIPTION": "Registries, chart repositories, the Chart Store, pushes, clusters and "
    "pull secrets. Send a personal API token (your profile page) as "
    "`Authorization: Bearer <token>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "config.runs.RunStatus.choices",
        "TrustStatusEnum": "charts.models.TrustStatus.choices",
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Sign-in: local accounts, OpenID Connect, LDAP (config/signin.py; README "Sign-in") ---
# "everyone" (default): every local account signs in with its password; "superusers": only
# superusers do (the first admin and break-glass accounts), everyone else uses SSO or LDAP.
WHARF_LOCAL_SIGN_IN = env.str("WHARF_LOCAL_SIGN_IN", default="everyone")
if WHARF_LOCAL_SIGN_IN not in ("everyone", "superusers"):
    raise ImproperlyConfigured(
        f'WHARF_LOCAL_SIGN_IN must be "everyone" or "superusers", not {WHARF_LOCAL_SIGN_IN!r}.'
    )

# OpenID Connect: on when WHARF_OIDC_ISSUER is set. Everything else about the provider
# comes from its discovery document (ISSUER/.well-known/openid-configuration).
WHARF_OIDC_ISSUER = env.str("WHARF_OIDC_ISSUER", default="").rstrip("/")
WHARF_OIDC_BUTTON_LABEL = env.str("WHARF_OIDC_BUTTON_LABEL", default="Sign in with SSO")
SOCIAL_AUTH_OIDC_OIDC_ENDPOINT = WHARF_OIDC_ISSUER
SOCIAL_AUTH_OIDC_KEY = env.str("WHARF_OIDC_CLIENT_ID", default="")
SOCIAL_AUTH_OIDC_SECRET = env.str("WHARF_OIDC_CLIENT_SECRET", default="")
if WHARF_OIDC_ISSUER:
    if not (SOCIAL_AUTH_OIDC_KEY and SOCIAL_AUTH_OIDC_SECRET):
        raise ImproperlyConfigured(
            "WHARF_OIDC_ISSUER is set, so WHARF_OIDC_CLIENT_ID and WHARF_OIDC_CLIENT_SECRET "
            "must be too (the client registered for Wharf at the identity provider)."
        )
    AUTHENTICATION_BACKENDS.append("config.signin.OidcBackend")
# The claim (in the ID token or from the userinfo endpoint) that lists the user's groups;
# a user whose token has none is in no group.
SOCIAL_AUTH_OIDC_GROUPS_KEY = env.str("WHARF_OIDC_GROUPS_CLAIM", default="groups")
SOCIAL_AUTH_OIDC_GROUPS_MISSING_AS_EMPTY = True
# Scopes asked for besides openid, profile and email (some providers want "groups").
SOCIAL_AUTH_OIDC_SCOPE = env.list("WHARF_OIDC_SCOPES", default=[])
# Seconds for each call to the provider (discovery, keys, token, userinfo).
SOCIAL_AUTH_OIDC_REQUESTS_TIMEOUT = env.float("WHARF_OIDC_TIMEOUT", default=10.0)
SOCIAL_AUTH_OIDC_USE_PKCE = True
# Signing out of Wharf after an SSO sign-in also ends the session at the provider (its
# discovery document's end_session_endpoint; OpenID Connect RP-Initiated Logout). Off by
# default: the provider must list https://WHARF/accounts/login/ as a post-logout redirect
# URI first, and it signs the person out of every application that uses the provider.
WHARF_OIDC_SIGN_OUT_AT_PROVIDER = env.bool("WHARF_OIDC_SIGN_OUT_AT_PROVIDER", default=False)
SOCIAL_AUTH_LOGIN_REDIRECT_URL = "/"
SOCIAL_AUTH_LOGIN_ERROR_URL = "/accounts/login/"
SOCIAL_AUTH_INACTIVE_USER_URL = "/accounts/login/?problem=inactive"
# The default steps, without load_extra_data (no tokens are kept: Wharf does not call the
# provider's APIs later), and with the groups mirrored last.
SOCIAL_AUTH_PIPELINE = (
    "social_core.pipeline.social_auth.social_details",
    "social_core.pipeline.social_auth.social_names",
    "social_core.pipeline.social_auth.social_uid",
    "social_core.pipeline.social_auth.auth_allowed",
    "social_core.pipeline.social_auth.social_user",
    "social_core.pipeline.user.get_username",
    "social_core.pipeline.user.create_user",
    "social_core.pipeline.social_auth.associate_user",
    "social_core.pipeline.user.user_details",
    "config.signin.mirror_oidc_groups",
)

# LDAP: on when WHARF_LDAP_SERVER_URI is set and python-ldap is installed (`make
# install-ldap`); set but not installed, Wharf starts without it and says why (a warning
# in the log and in `manage.py check`). The variables: config/ldapconfig.py, .env.example.
_ldap_values = {name: env.str(name, default="") for name in ldapconfig.VARIABLES}
WHARF_LDAP_PROBLEM = ""
if _ldap_values["WHARF_LDAP_SERVER_URI"]:
    if ldapconfig.ldap_importable():
        globals().update(ldapconfig.auth_ldap_settings(_ldap_values))
        # After local accounts, before OpenID Connect: the sign-in form tries it second.
        AUTHENTICATION_BACKENDS.insert(2, "config.signin_ldap.WharfLDAPBackend")
    else:
        WHARF_LDAP_PROBLEM = ldapconfig.NOT_INSTALLED

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# collectstatic's output; the image collects it at build time into a read-only folder.
STATIC_ROOT = Path(env.str("WHARF_STATIC_ROOT", default="") or VAR_DIR / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
X_FRAME_OPTIONS = "DENY"

# HTTPS. Behind a proxy that terminates TLS, Django sees plain HTTP unless it trusts the
# proxy's X-Forwarded-Proto: only say so when the proxy sets that header itself (and drops
# a client's), or a client could claim HTTPS. Redirecting to HTTPS is on by default only
# then: without it, Django cannot tell HTTPS from HTTP and would redirect forever.
WHARF_BEHIND_TLS_PROXY = env.bool("WHARF_BEHIND_TLS_PROXY", default=False)
if WHARF_BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=WHARF_BEHIND_TLS_PROXY)
# HSTS is remembered by browsers for this long: off until the operator knows every name
# Wharf answers to stays on HTTPS (31536000, a year, once it does).
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)

# --- Celery -------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
else:
    # A broker that needs no server: kombu's filesystem transport under var/.
    _broker_dir = VAR_DIR / "broker"
    for sub in ("out", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        # Worker remote-control state, which kombu would otherwise write to ./control.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
# Task state users see lives in Wharf's own models, not in a result backend.
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# On a cold shutdown (SIGQUIT, or SIGTERM in the image, which sets REMAP_SIGTERM=SIGQUIT),
# running tasks get this many seconds, then go back to the queue for another worker: a
# container stops within the 10 s its runtime waits before SIGKILL.
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = env.float("WHARF_WORKER_SHUTDOWN_SECONDS", default=6.0)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# One queue per kind of work, so that a slow registry stuck in chart syncs cannot starve
# pull-secret reconciles (ECR tokens expire) or pushes. A worker started without -Q (make
# run's) consumes them all; production runs workers per queue (README: "Queues").
WHARF_QUEUES = ("sync", "push", "reconcile", "celery")
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in WHARF_QUEUES]
CELERY_TASK_ROUTES = {
    "charts.tasks.sync_chart_source": {"queue": "sync"},
    "charts.tasks.read_chart_files": {"queue": "sync"},
    "trust.tasks.check_chart_trust": {"queue": "sync"},
    "charts.tasks.push_chart": {"queue": "push"},
    "clusters.tasks.reconcile_cluster_pull_secrets": {"queue": "reconcile"},
    "clusters.tasks.reconcile_all_pull_secrets": {"queue": "reconcile"},
    # The rest (the scheduled fan-out of syncs, recovery of runs) is quick: "celery".
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict = {}

# --- Background runs (config/runs.py) --------------------------------------------------
# A worker renews its lease every heartbeat; a lease that lapses means its owner is gone, so
# the lease bounds how long a dead worker blocks others, not how long a run may take.
WHARF_RUN_HEARTBEAT_SECONDS = env.float("WHARF_RUN_HEARTBEAT_SECONDS", default=20.0)
WHARF_RUN_LEASE_SECONDS = env.float("WHARF_RUN_LEASE_SECONDS", default=90.0)
if WHARF_RUN_LEASE_SECONDS < 2 * WHARF_RUN_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        "WHARF_RUN_LEASE_SECONDS must be at least twice WHARF_RUN_HEARTBEAT_SECONDS, or a "
        "slow beat would let a live run's lease lapse."
    )
# A queued run not started this long after it was sent never reached a worker: send it again.
WHARF_RUN_RESEND_AFTER_SECONDS = env.int("WHARF_RUN_RESEND_AFTER_SECONDS", default=300)
# How often beat looks for runs whose worker died, and for lost messages.
WHARF_RUN_RECOVERY_INTERVAL = env.int("WHARF_RUN_RECOVERY_INTERVAL", default=60)
# The longest one run of each kind may take (Celery's soft time limit; the hard limit is
# 30 s later and kills the worker process).
WHARF_SYNC_TIME_LIMIT = env.int("WHARF_SYNC_TIME_LIMIT", default=3600)
WHARF_PUSH_TIME_LIMIT = env.int("WHARF_PUSH_TIME_LIMIT", default=600)
WHARF_RECONCILE_TIME_LIMIT = env.int("WHARF_RECONCILE_TIME_LIMIT", default=900)
WHARF_CHART_FILES_TIME_LIMIT = env.int("WHARF_CHART_FILES_TIME_LIMIT", default=300)
WHARF_TRUST_TIME_LIMIT = env.int("WHARF_TRUST_TIME_LIMIT", default=300)
CELERY_BEAT_SCHEDULE["recover-runs"] = {
    "task": "config.tasks.recover_runs",
    "schedule": float(WHARF_RUN_RECOVERY_INTERVAL),
    "options": {"expires": max(WHARF_RUN_RECOVERY_INTERVAL - 5, 5)},
}

# --- Wharf ----------------------------------------------------------------------
# Seconds to connect, and of silence while reading, for every call to a registry or Helm
# repository (config.http), and the SSH tunnel's connect, login and channel-open timeout.
WHARF_REGISTRY_TIMEOUT = env.float("WHARF_REGISTRY_TIMEOUT", default=10.0)
# Seconds one whole HTTP request may take (connect, headers and body; a chart archive
# download with its redirects), however the server drips: config.http's watchdog ends it.
WHARF_HTTP_DEADLINE = env.float("WHARF_HTTP_DEADLINE", default=60.0)
# Seconds one Helm index.yaml download may take (an index of the maximum size, slowly).
WHARF_HELM_INDEX_DEADLINE = env.float("WHARF_HELM_INDEX_DEADLINE", default=300.0)
# Tests point boto3 at moto with this; production leaves it empty (real AWS).
WHARF_AWS_ENDPOINT_URL = env.str("WHARF_AWS_ENDPOINT_URL", default="") or None

# Chart sync (issue 3): how often, how deep, how many requests at once, and size limits.
WHARF_CHART_SYNC_INTERVAL = env.int("WHARF_CHART_SYNC_INTERVAL", default=15 * 60)
WHARF_CHART_DEEP_SYNC_INTERVAL = env.int("WHARF_CHART_DEEP_SYNC_INTERVAL", default=24 * 3600)
WHARF_CHART_SYNC_CONCURRENCY = env.int("WHARF_CHART_SYNC_CONCURRENCY", default=8)
# Repositories of one registry synced at once (sharing its WHARF_CHART_SYNC_CONCURRENCY).
WHARF_OCI_SYNC_REPOSITORIES = env.int("WHARF_OCI_SYNC_REPOSITORIES", default=8)
# Share of a registry's rate limit (RateLimit-Limit) a sync leaves unspent: once only
# this much is left, that registry's further syncs wait for its window (registries/budgets.py).
WHARF_RATE_LIMIT_RESERVE_PERCENT = env.int("WHARF_RATE_LIMIT_RESERVE_PERCENT", default=10)
WHARF_OCI_TAGS_PAGE_SIZE = env.int("WHARF_OCI_TAGS_PAGE_SIZE", default=1000)
# `n` asked for on each page of a registry's repository catalog ("All repositories").
WHARF_OCI_CATALOG_PAGE_SIZE = env.int("WHARF_OCI_CATALOG_PAGE_SIZE", default=1000)
# Seconds one whole listing of a registry's catalog may take, every page of it (a registry
# that links to new pages slowly, forever, is stopped; the listing then fails whole).
WHARF_OCI_CATALOG_DEADLINE = env.float("WHARF_OCI_CATALOG_DEADLINE", default=300.0)
# A tag list that links to new pages forever is refused past these (pages, and tags).
WHARF_OCI_TAGS_MAX_PAGES = env.int("WHARF_OCI_TAGS_MAX_PAGES", default=1000)
WHARF_OCI_TAGS_MAX = env.int("WHARF_OCI_TAGS_MAX", default=100_000)
# Seconds one repository's whole tag list (every page of it) may take.
WHARF_OCI_TAGS_DEADLINE = env.float("WHARF_OCI_TAGS_DEADLINE", default=300.0)
WHARF_HELM_INDEX_MAX_BYTES = env.int("WHARF_HELM_INDEX_MAX_BYTES", default=100 * 2**20)
WHARF_CHART_ARCHIVE_MAX_BYTES = env.int("WHARF_CHART_ARCHIVE_MAX_BYTES", default=20 * 2**20)
WHARF_CHART_PUSH_MAX_BYTES = env.int("WHARF_CHART_PUSH_MAX_BYTES", default=20 * 2**20)
CELERY_BEAT_SCHEDULE["sync-chart-sources"] = {
    "task": "charts.tasks.sync_due_sources",
    "schedule": float(WHARF_CHART_SYNC_INTERVAL),
    # A beat tick nobody picked up before the next one is dropped, not piled up.
    "options": {"expires": max(WHARF_CHART_SYNC_INTERVAL - 30, 30)},
}

# Chart files (values.yaml, README) are read in the background; this also retries failures.
CELERY_BEAT_SCHEDULE["read-chart-files"] = {
    "task": "charts.tasks.read_chart_files",
    "schedule": 300.0,
    "options": {"expires": 270},
}

# Trust checks (signatures of chart versions) run in the background after syncs and key
# changes; this also retries the versions whose source could not be read.
CELERY_BEAT_SCHEDULE["check-chart-trust"] = {
    "task": "trust.tasks.check_chart_trust",
    "schedule": 300.0,
    "options": {"expires": 270},
}

# --- Pull secrets (clusters) -------------------------------------------------------
# Seconds for every call Wharf makes to a Kubernetes API server (the whole call: config.http's
# watchdog cuts one that drips).
WHARF_KUBE_TIMEOUT = env.float("WHARF_KUBE_TIMEOUT", default=10.0)
# Writes (secrets, ServiceAccounts) one reconcile has in flight at once to one cluster; the
# API server's 429 Too Many Requests and Retry-After are honoured (clusters/kube.py).
WHARF_RECONCILE_CLUSTER_CONCURRENCY = env.int("WHARF_RECONCILE_CLUSTER_CONCURRENCY", default=8)
if WHARF_RECONCILE_CLUSTER_CONCURRENCY < 1:
    raise ImproperlyConfigured("WHARF_RECONCILE_CLUSTER_CONCURRENCY must be at least 1.")
# Minutes between scheduled pull-secret reconciles of every cluster (saves trigger one too).
WHARF_RECONCILE_INTERVAL = env.int("WHARF_RECONCILE_INTERVAL", default=30)
# Seconds a pull secret keeps the previous credential beside a new one (a changed password,
# a renewed ECR token), so no pod meets a moment without a working one; 0: no overlap.
WHARF_PULL_SECRET_ROTATION_GRACE = env.int("WHARF_PULL_SECRET_ROTATION_GRACE", default=3600)
if WHARF_PULL_SECRET_ROTATION_GRACE < 0:
    raise ImproperlyConfigured("WHARF_PULL_SECRET_ROTATION_GRACE is seconds: 0 or more.")
CELERY_BEAT_SCHEDULE["reconcile-pull-secrets"] = {
    "task": "clusters.tasks.reconcile_all_pull_secrets",
    "schedule": WHARF_RECONCILE_INTERVAL * 60.0,
    "options": {"expires": max(WHARF_RECONCILE_INTERVAL * 60.0 - 30, 30)},
}
# In-cluster pull tests (clusters/pulltest.py): seconds a test Pod has to pull its image
# (also its activeDeadlineSeconds), seconds between two reads of it, and the task's time limit.
WHARF_PULL_TEST_TIMEOUT = env.int("WHARF_PULL_TEST_TIMEOUT", default=120)
WHARF_PULL_TEST_POLL_SECONDS = env.float("WHARF_PULL_TEST_POLL_SECONDS", default=2.0)
WHARF_PULL_TEST_TIME_LIMIT = env.int("WHARF_PULL_TEST_TIME_LIMIT", default=600)
if WHARF_PULL_TEST_TIME_LIMIT < WHARF_PULL_TEST_TIMEOUT + 60:
    raise ImproperlyConfigured(
        "WHARF_PULL_TEST_TIME_LIMIT must be at least WHARF_PULL_TEST_TIMEOUT + 60 seconds, so "
        "a test has time to create its Pods, wait for them and delete them."
    )

# /metrics (Prometheus): open to anyone who reaches it unless this is set; then only
# for "Authorization: Bearer <token>".
WHARF_METRICS_TOKEN = env.str("WHARF_METRICS_TOKEN", default="")

# "plain" lines for people, or "json": one JSON object a line, for a log collector.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f'LOG_FORMAT must be "plain" or "json", not {LOG_FORMAT!r}.')
# Celery workers and beat log through the same handlers (and format) as the web.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "()": "config.logging.PlainFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        },
        "json": {"()": "config.logging.JsonFormatter"},
    },
    "filters": {"forbidden_without_traceback": {"()": "config.logging.ForbiddenWithoutTraceback"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["forbidden_without_traceback"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # botocore and urllib3 can log request headers at DEBUG; keep them quiet.
    "loggers": {
        "botocore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
        # django-axes logs every sign-in at INFO; its warnings (lockouts) still show.
        "axes": {"level": "WARNING"},
        # social-auth and django-auth-ldap: failures are logged by config/signin*.py, without
        # the providers' own text (which may quote a token).
        "social": {"level": "ERROR"},
        "django_auth_ldap": {"level": "ERROR"},
        # A 403 is one warning line (the filter also applies where the record is made, so
        # handlers added later, such as pytest's, see no traceback either).
        "django.request": {"filters": ["forbidden_without_traceback"]},
    },
}
