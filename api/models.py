"""Personal API tokens: what automation sends as ``Authorization: Bearer <token>``.

A token is shown once, when it is made; Wharf keeps only its SHA-256 digest (a token is 32
random bytes, so a fast digest is as safe as a slow password hash and lets a request find
its token with one indexed query). A token acts with its user's role, ends at its expiry
(90 days unless chosen, a year at most) or when revoked, and remembers when it was last used.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "wharf_"
DEFAULT_DAYS = 90
MAX_DAYS = 365
# A token's last use is written at most this often: a busy pipeline does not write a row
# on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def usable(self, now=None):
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True, expires_at__gt=now, user__is_active=True)


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(
        max_length=100, help_text="What uses it, for example “ci-pipeline” or “terraform”."
    )
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="one_token_name_per_user")
        ]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<ApiToken {self.name} of user {self.user_id}>"

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "active"

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            ApiToken.objects.filter(pk=self.pk, revoked_at__isnull=True).update(
                revoked_at=self.revoked_at
            )

    def mark_used(self, now=None) -> None:
        now = now or timezone.now()
        if self.last_used_at is None or now - self.last_used_at >= LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now

    @property
    def actor(self) -> str:
        """Who the audit log says did a write made with this token."""
        return f"{self.user.get_username()} (API token “{self.name}”)"


def validate_days(days: int) -> None:
    MinValueValidator(1, "A token lasts at least one day.")(days)
    MaxValueValidator(MAX_DAYS, f"A token lasts at most {MAX_DAYS} days (a year).")(days)


def issue_token(user, name: str, days: int = DEFAULT_DAYS) -> tuple[ApiToken, str]:
    """Make a token for ``user``; return it and its text, which nothing keeps.

    Raises ``ValidationError`` for a blank or repeated name or a lifetime out of range.
    """
    name = (name or "").strip()
    errors: dict[str, list[str]] = {}
    if not name:
        errors["name"] = ["Name the token after what will use it."]
    elif ApiToken.objects.filter(user=user, name=name).exists():
        errors["name"] = [f"You already have a token named “{name}”: choose another name."]
    try:
        validate_days(days)
    except ValidationError as exc:
        errors["days"] = exc.messages
    if errors:
        raise ValidationError(errors)
    text = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user, name=name, digest=digest_of(text), expires_at=timezone.now() + timedelta(days)
    )
    token.full_clean(exclude=["digest"])
    token.save()
    return token, text


def find_token(text: str) -> ApiToken | None:
    """The usable token whose text is ``text`` (not revoked, not expired, its user active)."""
    if not text.startswith(TOKEN_PREFIX) or len(text) > 200:
        return None
    return ApiToken.objects.usable().select_related("user").filter(digest=digest_of(text)).first()
