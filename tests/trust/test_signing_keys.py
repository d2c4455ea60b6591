"""Signing keys: what the model accepts and refuses (the rules are SigningKey.clean's),
and the Global Configurations screen that adds, lists and deletes them."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.exceptions import ValidationError
from django.urls import reverse

from config.models import AuditEntry
from trust.models import SigningKey

pytestmark = pytest.mark.django_db


def openpgp_key(signer, name="release") -> SigningKey:
    key = SigningKey(name=name, kind=SigningKey.Kind.OPENPGP, public_key=signer.public_armored)
    key.full_clean()
    key.save()
    return key


def test_an_openpgp_public_key_is_read_by_gpg_with_its_fingerprint_and_ids(release_signer):
    key = openpgp_key(release_signer)

    assert key.fingerprint == release_signer.fingerprint
    assert release_signer.key_id in key.key_ids
    assert key.short_id == release_signer.key_id
    assert "release@example.com" in key.user_ids


def test_a_cosign_p256_public_key_gets_the_sha256_of_its_der_as_id(cosign_key):
    key = SigningKey(name="cosign", kind=SigningKey.Kind.COSIGN, public_key=cosign_key.public_pem)
    key.full_clean()

    assert len(key.fingerprint) == 64
    assert key.key_ids == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello", "not an ASCII-armored OpenPGP public key"),
        (
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnotbase64\n-----END PGP PUBLIC KEY BLOCK-----",
            "could not read",
        ),
        ("-----BEGIN PGP PRIVATE KEY BLOCK-----\n...", "private key"),
    ],
)
def test_a_bad_openpgp_key_is_refused_with_a_message(text, message):
    key = SigningKey(name="bad", kind=SigningKey.Kind.OPENPGP, public_key=text)

    with pytest.raises(ValidationError) as refused:
        key.full_clean()

    assert message in str(refused.value.message_dict["public_key"])


def test_two_openpgp_keys_in_one_block_are_refused(release_signer, stranger_signer):
    both = release_signer.public_armored + stranger_signer.public_armored
    key = SigningKey(name="two", kind=SigningKey.Kind.OPENPGP, public_key=both)

    with pytest.raises(ValidationError, match="holds 2 keys"):
        key.full_clean()


def test_an_expired_openpgp_key_is_refused(expired_signer):
    key = SigningKey(
        name="old", kind=SigningKey.Kind.OPENPGP, public_key=expired_signer.public_armored
    )

    with pytest.raises(ValidationError, match="expired"):
        key.full_clean()


def _pem(public_key) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: _pem(rsa.generate_private_key(65537, 2048).public_key()), "Only ECDSA P-256"),
        (lambda: _pem(ec.generate_private_key(ec.SECP384R1()).public_key()), "Only ECDSA P-256"),
        (
            lambda: (
                ec.generate_private_key(ec.SECP256R1())
                .private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                .decode()
            ),
            "private key",
        ),
        (lambda: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "could not be read"),
    ],
)
def test_a_bad_cosign_key_is_refused_with_a_message(make, message):
    key = SigningKey(name="bad", kind=SigningKey.Kind.COSIGN, public_key=make())

    with pytest.raises(ValidationError) as refused:
        key.full_clean()

    assert message in str(refused.value.message_dict["public_key"])


def test_the_same_key_twice_is_refused_naming_the_first(release_signer):
    openpgp_key(release_signer, name="release")
    again = SigningKey(
        name="again", kind=SigningKey.Kind.OPENPGP, public_key=release_signer.public_armored
    )

    with pytest.raises(ValidationError, match="already configured, as “release”"):
        again.full_clean()


# --- the screen -------------------------------------------------------------------------


def test_an_admin_adds_a_key_and_the_list_shows_its_id(admin_client, release_signer):
    response = admin_client.post(
        reverse("trust:signingkey_add"),
        {"name": "release", "kind": "openpgp", "public_key": release_signer.public_armored},
    )

    assert response.status_code == 302
    listing = admin_client.get(reverse("trust:signingkey_list")).content.decode()
    assert "release" in listing and release_signer.key_id in listing
    assert AuditEntry.objects.filter(object_type="signing key", action="create").exists()


def test_a_bad_key_on_the_screen_shows_the_message_and_saves_nothing(admin_client):
    response = admin_client.post(
        reverse("trust:signingkey_add"),
        {"name": "bad", "kind": "cosign", "public_key": "not a key"},
    )

    assert response.status_code == 200
    assert "This is not a PEM public key" in response.content.decode()
    assert not SigningKey.objects.exists()


def test_a_signed_in_user_who_is_not_admin_cannot_see_the_keys(user_client):
    assert user_client.get(reverse("trust:signingkey_list")).status_code == 403


def test_deleting_a_key_removes_it(admin_client, cosign_key):
    key = SigningKey(name="cosign", kind=SigningKey.Kind.COSIGN, public_key=cosign_key.public_pem)
    key.full_clean()
    key.save()

    response = admin_client.post(reverse("trust:signingkey_delete", args=[key.pk]))

    assert response.status_code == 302
    assert not SigningKey.objects.exists()
