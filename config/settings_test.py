"""Settings for the test suite: fixed throw-away keys and a fast password hasher."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production")
# Two keys, so that every test also runs with a rotation key in place.
os.environ.setdefault(
    "WHARF_ENCRYPTION_KEYS",
    "xtUkkm4SDRdYFs4DZ9jmm9IK-7HEI3ZFoP3wjyowBpQ=,YHqH_4JbRhVWG-TY2JAm7m1T62NdH5f2rKSYrdm7d1Y=",
)

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Background work runs only when a test runs it (tests/broker.py records what is sent).
CELERY_TASK_ALWAYS_EAGER = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
