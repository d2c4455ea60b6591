"""Signing keys an admin trusts, for Helm provenance (OpenPGP) and cosign (ECDSA P-256).

A key is validated by the model (:meth:`SigningKey.clean`), wherever it is saved from: an
OpenPGP key is read by Debian's ``gpg`` (:mod:`trust.openpgp`), a PEM key by
``cryptography`` (:mod:`trust.cosign`); what they find (fingerprint, the key ids a
signature names, user ids) is kept beside the key for the screens and for re-evaluating
only the chart versions whose signatures name it.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse


class SigningKey(models.Model):
    class Kind(models.TextChoices):
        OPENPGP = "openpgp", "OpenPGP (Helm provenance)"
        COSIGN = "cosign", "PEM public key (cosign)"

    name = models.CharField(
        max_length=60, unique=True, help_text="What the chart pages call this key."
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.OPENPGP)
    public_key = models.TextField(
        help_text="The ASCII-armored OpenPGP public key (-----BEGIN PGP PUBLIC KEY BLOCK-----) "
        "or the PEM public key (-----BEGIN PUBLIC KEY-----, ECDSA P-256, as "
        "cosign generate-key-pair writes cosign.pub)."
    )
    # Read from the key by clean(), never typed.
    fingerprint = models.CharField(max_length=100, editable=False, db_index=True)
    # OpenPGP: the long (16 hex) ids of the primary key and its subkeys, the ids a
    # signature names; cosign: empty (a cosign signature names no key).
    key_ids = models.JSONField(default=list, blank=True, editable=False)
    user_ids = models.TextField(blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "signing key"
        verbose_name_plural = "signing keys"

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<SigningKey {self.name} {self.kind} {self.fingerprint}>"

    def get_absolute_url(self) -> str:
        return reverse("trust:signingkey_edit", args=[self.pk])

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance.remember_loaded()
        return instance

    def remember_loaded(self) -> None:
        """What the row said when loaded: a change of key re-checks what the old one named."""
        self._loaded = {
            "kind": self.__dict__.get("kind", ""),
            "name": self.__dict__.get("name", ""),
            "key_ids": list(self.__dict__.get("key_ids") or []),
        }

    @property
    def short_id(self) -> str:
        """What people compare: the last 16 hex digits of an OpenPGP fingerprint (its long
        key id), or the first 16 of a cosign key's SHA-256."""
        if self.kind == self.Kind.OPENPGP:
            return self.fingerprint[-16:]
        return self.fingerprint[:16]

    def clean(self) -> None:
        from trust import cosign, openpgp

        text = (self.public_key or "").strip()
        self.name = (self.name or "").strip()
        if not text:
            raise ValidationError({"public_key": "Paste the public key."})
        if self.kind == self.Kind.OPENPGP:
            try:
                info = openpgp.read_public_key(text)
            except openpgp.OpenPgpError as exc:
                raise ValidationError({"public_key": str(exc)}) from None
            self.fingerprint = info.fingerprint
            self.key_ids = list(info.key_ids)
            self.user_ids = "\n".join(info.user_ids)
            self.expires_at = info.expires_at
        else:
            try:
                self.fingerprint = cosign.public_key_id(text)
            except cosign.CosignError as exc:
                raise ValidationError({"public_key": str(exc)}) from None
            self.key_ids, self.user_ids, self.expires_at = [], "", None
        self.public_key = text + "\n"
        same = SigningKey.objects.filter(kind=self.kind, fingerprint=self.fingerprint)
        if self.pk:
            same = same.exclude(pk=self.pk)
        other = same.first()
        if other is not None:
            raise ValidationError(
                {"public_key": f"This key is already configured, as “{other.name}”."}
            )
