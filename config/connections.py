"""How Wharf reaches a server, as model fields: connection method, proxy, SSH tunnel, TLS.

:class:`ConnectionSettings` is the abstract model that registries and Helm repositories
inherit: the fields, their rules (:meth:`ConnectionSettings.clean`), the
:class:`~config.http.Transport` built from them, and pinning an SSH server's host key
trusted on first use. Forms only lay the fields out and keep stored secrets.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from config import audit, http
from config.crypto import EncryptedTextField
from config.models import AuditEntry
from config.tunnel import (
    DEFAULT_SSH_PORT,
    SshTarget,
    check_learned_host_key,
    describe_key,
    load_private_key,
    parse_host_keys,
)
from config.validators import validate_pem_certificates


class Tls(models.TextChoices):
    """The TLS modes of ``config.http``, for code that compares (``Registry.Tls.CA``)."""

    SECURE = http.TLS_SECURE, http.TLS_LABELS[http.TLS_SECURE]
    CA = http.TLS_CA, http.TLS_LABELS[http.TLS_CA]
    INSECURE = http.TLS_INSECURE, http.TLS_LABELS[http.TLS_INSECURE]


class ConnectionMethod(models.TextChoices):
    DIRECT = "direct", "Direct"
    PROXY = "proxy", "via Proxy"
    SSH = "ssh", "via SSH Tunnel"


def split_proxy_credentials(url: str) -> tuple[str, str, str]:
    """``url`` without a pasted ``user:password@``, and that user and password (decoded).

    A proxy URL is only scheme://host:port, so everything up to the last "@" is user info,
    even when a pasted password holds "/", "?" or "#" that would end a URL's host part.
    """
    url = (url or "").strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    if "@" not in rest:
        return url, "", ""
    userinfo, _, host_port = rest.rpartition("@")
    user, _, password = userinfo.partition(":")
    return (f"{scheme}://" if sep else "") + host_port, unquote(user), unquote(password)


def proxy_url_problem(url: str) -> str:
    """Why ``url`` (without credentials) is not a usable proxy URL, or ""."""
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        return "Enter the proxy as http://host:port or https://host:port."
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "The proxy's port must be a number between 1 and 65535."
    return ""


class ConnectionSettings(models.Model):
    """How to reach a server: connection method (direct, proxy, SSH tunnel) and TLS mode.

    Subclasses call ``super().clean()`` from their own ``clean()``.
    """

    Tls = Tls
    ConnectionMethod = ConnectionMethod

    connection_method = models.CharField(
        max_length=10, choices=ConnectionMethod.choices, default=ConnectionMethod.DIRECT
    )
    proxy_url = models.CharField("Proxy URL", max_length=255, blank=True)
    proxy_username = models.CharField("Proxy username", max_length=255, blank=True)
    proxy_password = EncryptedTextField("Proxy password", blank=True)
    ssh_host = models.CharField("SSH host", max_length=255, blank=True)
    ssh_port = models.PositiveIntegerField("SSH port", null=True, blank=True)
    ssh_user = models.CharField("SSH user", max_length=100, blank=True)
    ssh_password = EncryptedTextField("SSH password", blank=True)
    ssh_private_key = EncryptedTextField("SSH private key", blank=True)
    # known_hosts line(s) of the SSH server; written by "trust on first use" when empty.
    ssh_host_key = models.TextField("Pinned host key", blank=True)
    ssh_trust_on_first_use = models.BooleanField("Trust on first use", default=False)

    tls_mode = models.CharField(
        "Advanced connection", max_length=10, choices=http.TLS_CHOICES, default=http.TLS_SECURE
    )
    ca_certificate = models.TextField("CA certificate", blank=True)

    # The encrypted fields above, for a subclass's ``audit_secret_fields``.
    connection_secret_fields = ("proxy_password", "ssh_password", "ssh_private_key")
    # What is reached, for messages ("registry", "Helm repository").
    connection_target = "server"

    class Meta:
        abstract = True

    # --- rules ---------------------------------------------------------------------

    def clean(self) -> None:
        """The connection method's and the TLS mode's rules; clears what the choice does not use."""
        super().clean()
        errors: dict[str, list[str]] = {}
        self._clean_proxy(errors)
        self._clean_ssh(errors)
        self._clean_tls(errors)
        if errors:
            raise ValidationError(errors)

    def _clean_proxy(self, errors: dict[str, list[str]]) -> None:
        if self.connection_method != ConnectionMethod.PROXY:
            self.proxy_url = self.proxy_username = self.proxy_password = ""
            return
        # Credentials pasted into the URL move to their own fields: the URL is shown and
        # logged, the password is stored encrypted. Values typed in the fields win.
        url, user, password = split_proxy_credentials(self.proxy_url)
        self.proxy_username = (self.proxy_username or user).strip()
        self.proxy_password = self.proxy_password or password
        if not self.proxy_username:
            self.proxy_password = ""
        if not url:
            errors.setdefault("proxy_url", []).append(
                "Enter the proxy URL, for example http://proxy.example.com:3128."
            )
            self.proxy_url = ""
            return
        problem = proxy_url_problem(url)
        if problem:
            errors.setdefault("proxy_url", []).append(problem)
            self.proxy_url = url  # never the pasted credentials, even on a refused URL
            return
        self.proxy_url = urlunsplit(urlsplit(url)._replace(path=""))

    def _clean_ssh(self, errors: dict[str, list[str]]) -> None:
        if self.connection_method != ConnectionMethod.SSH:
            self.ssh_host = self.ssh_user = self.ssh_password = self.ssh_private_key = ""
            self.ssh_host_key = ""
            self.ssh_port = None
            self.ssh_trust_on_first_use = False
            return
        self.ssh_host = (self.ssh_host or "").strip()
        self.ssh_port = self.ssh_port or DEFAULT_SSH_PORT
        if not self.ssh_host:
            errors.setdefault("ssh_host", []).append("Enter the SSH host the tunnel goes through.")
        if not (0 < self.ssh_port < 65536):
            errors.setdefault("ssh_port", []).append("The SSH port must be between 1 and 65535.")
        if not self.ssh_user:
            errors.setdefault("ssh_user", []).append("Enter the SSH user.")
        key = self.ssh_private_key or ""
        if key and "PRIVATE KEY-----" not in key:
            errors.setdefault("ssh_private_key", []).append(
                "This is not a private key: paste the whole key file, "
                "including its -----BEGIN … PRIVATE KEY----- line."
            )
        elif key:
            try:
                load_private_key(key)
            except ValueError as exc:
                errors.setdefault("ssh_private_key", []).append(str(exc))
        if not (self.ssh_password or key):
            errors.setdefault("ssh_password", []).append("Enter the SSH password or a private key.")
        self.ssh_host_key = "\n".join(
            line.strip() for line in (self.ssh_host_key or "").splitlines()
        ).strip()
        try:
            parse_host_keys(self.ssh_host_key)
        except ValueError as exc:
            errors.setdefault("ssh_host_key", []).append(str(exc))

    def _clean_tls(self, errors: dict[str, list[str]]) -> None:
        self.tls_mode = self.tls_mode or Tls.SECURE
        if self.tls_mode != Tls.CA:
            self.ca_certificate = ""
            return
        try:
            self.ca_certificate = validate_pem_certificates(self.ca_certificate)
        except ValidationError as exc:
            errors.setdefault("ca_certificate", []).extend(exc.messages)

    # --- reaching the server -----------------------------------------------------------

    def transport(self) -> http.Transport:
        """How to reach the server: the input ``config.http`` needs (with the settings)."""
        method = self.connection_method
        proxy = method == ConnectionMethod.PROXY
        tls = self.tls_mode or Tls.SECURE
        return http.Transport(
            tls=tls,
            ca_pem=self.ca_certificate if tls == Tls.CA else "",
            timeout=settings.WHARF_REGISTRY_TIMEOUT,
            deadline=settings.WHARF_HTTP_DEADLINE,
            proxy_url=self.proxy_url if proxy else "",
            proxy_username=self.proxy_username if proxy else "",
            proxy_password=self.proxy_password if proxy else "",
            ssh=self.ssh_target() if method == ConnectionMethod.SSH else None,
        )

    def ssh_target(self) -> SshTarget:
        return SshTarget(
            host=self.ssh_host,
            port=self.ssh_port or DEFAULT_SSH_PORT,
            username=self.ssh_user,
            password=self.ssh_password,
            private_key=self.ssh_private_key,
            host_keys=self.ssh_host_key,
            trust_on_first_use=self.ssh_trust_on_first_use,
            on_host_key_learned=self.remember_ssh_host_key,
        )

    def route_step(self, transport: http.Transport) -> str:
        """What "Test connection" says about the route it took, or ""."""
        if transport.ssh is not None:
            return f"Opened an SSH tunnel through {transport.ssh.address}."
        if transport.proxy_url:
            return f"Went through the proxy {transport.proxy_address}."
        return ""

    def trusted_host_key_step(self) -> str:
        """What "Test connection" says after trusting the SSH server's key on first use."""
        keys = parse_host_keys(self.ssh_host_key)
        saved = (
            "saved as the pinned host key"
            if self.pk
            else f"pinned when the {self.connection_target} is saved"
        )
        return f"Trusted the SSH server's host key on first use ({describe_key(keys[0])}); {saved}."

    @contextlib.contextmanager
    def noting_route(self, steps: list[str], transport: http.Transport) -> Iterator[None]:
        """Around a "Test connection": note in ``steps`` a host key trusted on first use
        (also when the check then fails), and, once it succeeded, the route it took."""
        pinned_before = self.ssh_host_key
        try:
            yield
        finally:
            if self.ssh_host_key != pinned_before:
                steps.append(self.trusted_host_key_step())
        route = self.route_step(transport)
        if route:
            steps.append(route)

    # --- SSH host key pinning ---------------------------------------------------------

    # The pinned key as the row was read (None for an instance not read from the database).
    _ssh_host_key_loaded: str | None = None

    @classmethod
    def from_db(cls, db: Any, field_names: Any, values: Any) -> Any:
        instance = super().from_db(db, field_names, values)
        # What was pinned when this row was read: tells "pinned meanwhile by another worker"
        # from "cleared in an edit form that is not saved yet".
        instance._ssh_host_key_loaded = instance.__dict__.get("ssh_host_key")
        return instance

    def remember_ssh_host_key(self, line: str) -> None:
        """Pin the SSH server's key trusted on first use: on this instance, and saved if stored.

        Raises :class:`~config.tunnel.TunnelError` when another connection pinned a
        different key meanwhile: of two "first uses" at once, only the pinned one goes on.
        """
        self.ssh_host_key = line
        if self.pk is None:
            return  # an unsaved object keeps it until it is saved
        rows = type(self)._default_manager
        # Only while nothing is pinned: a key pinned meanwhile is never overwritten. And only
        # for the server the stored row names: testing an unsaved edit pins nothing there.
        stored = rows.filter(pk=self.pk, ssh_host=self.ssh_host, ssh_port=self.ssh_port)
        if stored.filter(ssh_host_key="").update(ssh_host_key=line):
            audit.record(None, AuditEntry.Action.UPDATE, self, {"ssh_host_key": ["", line]})
            return
        if not stored.exists():
            return  # an edit to another server keeps the key until it is saved
        pinned = rows.filter(pk=self.pk).values_list("ssh_host_key", flat=True).first()
        loaded = getattr(self, "_ssh_host_key_loaded", None)
        if pinned and loaded is not None and pinned != loaded:
            self.ssh_host_key = pinned
            check_learned_host_key(self.ssh_target(), line, pinned)
