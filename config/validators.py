"""Checks every app's models share (the models own the rules; forms and the admin ask them)."""

from cryptography import x509
from django.core.exceptions import ValidationError


def validate_pem_certificates(value: str) -> str:
    """One or more PEM certificates; returns the trimmed text."""
    text = (value or "").strip()
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ValidationError(
            "This is not a PEM certificate: paste the CA certificate including the "
            "-----BEGIN CERTIFICATE----- and -----END CERTIFICATE----- lines."
        )
    try:
        x509.load_pem_x509_certificates(text.encode())
    except ValueError as exc:
        raise ValidationError(
            "The CA certificate could not be read: check that the whole PEM block was pasted."
        ) from exc
    return text + "\n"
