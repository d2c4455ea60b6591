from django.contrib import admin

from trust.models import SigningKey


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin):
    """Saved through SigningKey.clean() like Wharf's own screen: the same checks and messages."""

    list_display = ("name", "kind", "fingerprint", "expires_at")
    readonly_fields = ("fingerprint", "key_ids", "user_ids", "expires_at")
    fields = ("name", "kind", "public_key", *readonly_fields)
