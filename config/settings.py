"""Wharf settings, read from the environment (django-environ).

Embedded defaults let a new user run Wharf with nothing but Python: SQLite under
``var/`` and a Celery broker on the filesystem. Production sets ``DATABASE_URL``
(PostgreSQL), ``REDIS_URL`` (Redis broker), ``SECRET_KEY`` and
``WHARF_ENCRYPTION_KEYS``. Every variable is listed in ``.env.example``.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config.keys import dev_fernet_key, dev_secret

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

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
    "django.contrib.staticfiles",
    "django_htmx",
    "config.apps.WharfConfig",
    "registries",
    "clusters",
    "charts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
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
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'wharf.sqlite3'}")}
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
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
X_FRAME_OPTIONS = "DENY"

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
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict = {}

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
WHARF_OCI_TAGS_PAGE_SIZE = env.int("WHARF_OCI_TAGS_PAGE_SIZE", default=1000)
# A tag list that links to new pages forever is refused past these (pages, and tags).
WHARF_OCI_TAGS_MAX_PAGES = env.int("WHARF_OCI_TAGS_MAX_PAGES", default=1000)
WHARF_OCI_TAGS_MAX = env.int("WHARF_OCI_TAGS_MAX", default=100_000)
WHARF_HELM_INDEX_MAX_BYTES = env.int("WHARF_HELM_INDEX_MAX_BYTES", default=100 * 2**20)
WHARF_CHART_ARCHIVE_MAX_BYTES = env.int("WHARF_CHART_ARCHIVE_MAX_BYTES", default=20 * 2**20)
WHARF_CHART_PUSH_MAX_BYTES = env.int("WHARF_CHART_PUSH_MAX_BYTES", default=20 * 2**20)
CELERY_BEAT_SCHEDULE["sync-chart-sources"] = {
    "task": "charts.tasks.sync_due_sources",
    "schedule": float(WHARF_CHART_SYNC_INTERVAL),
    # A beat tick nobody picked up before the next one is dropped, not piled up.
    "options": {"expires": max(WHARF_CHART_SYNC_INTERVAL - 30, 30)},
}

# --- Pull secrets (clusters) -------------------------------------------------------
# Seconds for every call Wharf makes to a Kubernetes API server.
WHARF_KUBE_TIMEOUT = env.float("WHARF_KUBE_TIMEOUT", default=10.0)
# Minutes between scheduled pull-secret reconciles of every cluster (saves trigger one too).
WHARF_RECONCILE_INTERVAL = env.int("WHARF_RECONCILE_INTERVAL", default=30)
CELERY_BEAT_SCHEDULE["reconcile-pull-secrets"] = {
    "task": "clusters.tasks.reconcile_all_pull_secrets",
    "schedule": WHARF_RECONCILE_INTERVAL * 60.0,
    "options": {"expires": max(WHARF_RECONCILE_INTERVAL * 60.0 - 30, 30)},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # botocore and urllib3 can log request headers at DEBUG; keep them quiet.
    "loggers": {
        "botocore": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}
