"""The Container/OCI Registry form: every field of the SPEC, per provider.

The rules are the model's (``Registry.clean()``, asking the provider); this form decides
which fields are shown, reads an uploaded key file, and keeps a stored secret left blank.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction

from config.forms import (
    KEEP_SECRET_HELP,
    ModelRulesFormMixin,
    SecretField,
    StyledFormMixin,
    validate_pem_certificates,
)
from registries.models import Registry
from registries.providers import (
    AUTH_IAM_ROLE,
    AUTH_JSON_KEY,
    AUTH_LABELS,
    PROVIDER_CHOICES,
    EcrProvider,
    get_provider,
)
from registries.tunnel import load_private_key, parse_host_keys

MAX_JSON_KEY_BYTES = 64 * 1024

DEFAULT_PROVIDER = PROVIDER_CHOICES[0][0]
NAME_HELP = "3–30 characters: lowercase letters, digits and -, starting with a letter."

# Fields whose value clean() decides (kept, cleared or defaulted), set on the instance as is
# before the model validates it (ModelForm would leave out an omitted field with a default).
CLEANED_FIELDS = (
    "secret", "ssh_password", "ssh_private_key", "auth_type", "username", "repositories",
    "tls_mode", "ca_certificate", "proxy_url", "ssh_port", "ssh_host", "ssh_user",
    "proxy_username", "proxy_password", "ssh_host_key", "ssh_trust_on_first_use", "is_default",
)  # fmt: skip

# Inputs whose change re-renders the provider-dependent part of the form (htmx).
REFRESH_FIELDS = (
    "provider",
    "registry_type",
    "auth_type",
    "connection_method",
    "tls_mode",
    "chart_source",
)


class ProxyUrlField(forms.CharField):
    """The proxy URL; a pasted ``user:password@`` is never rendered back (clean() moves it)."""

    def bound_data(self, data, initial):
        return _without_userinfo(data or "")


def _split_userinfo(url: str) -> tuple[str, str]:
    """``url`` without its ``user:password@``, and that user info (still %-encoded).

    A proxy URL is only scheme://host:port, so everything up to the last "@" is user info,
    even when a pasted password holds "/", "?" or "#" that would end a URL's host part.
    """
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    if "@" not in rest:
        return url, ""
    userinfo, _, host_port = rest.rpartition("@")
    return (f"{scheme}://" if sep else "") + host_port, userinfo


def _without_userinfo(url: str) -> str:
    return _split_userinfo(url)[0]


class RegistryForm(ModelRulesFormMixin, StyledFormMixin, forms.ModelForm):
    provider = forms.ChoiceField(label="Registry provider", choices=PROVIDER_CHOICES)
    registry_type = forms.ChoiceField(
        label="Registry type", choices=Registry.Type.choices, widget=forms.RadioSelect
    )
    auth_type = forms.ChoiceField(
        label="Authentication type", required=False, widget=forms.RadioSelect
    )
    secret = SecretField(label="Password/Token")
    secret_file = forms.FileField(
        label="Upload the JSON key file instead",
        required=False,
        help_text="Or paste the file's content above.",
    )
    connection_method = forms.ChoiceField(
        label="Connection method",
        choices=Registry.ConnectionMethod.choices,
        widget=forms.RadioSelect,
    )
    proxy_url = ProxyUrlField(
        label="Proxy URL",
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "http://proxy.example.com:3128"}),
        help_text="HTTPS to the registry goes through CONNECT, so TLS is still checked end to "
        "end as chosen under Advanced connection.",
    )
    proxy_password = SecretField(label="Proxy password")
    ssh_password = SecretField(label="SSH password")
    ssh_private_key = SecretField(
        label="SSH private key",
        multiline=True,
        help_text="OpenSSH or PEM, without a passphrase. Give a password or a key.",
    )
    ssh_host_key = forms.CharField(
        label="Pinned host key",
        required=False,
        widget=forms.Textarea(
            attrs={
                "rows": 2,
                "spellcheck": "false",
                "placeholder": "[ssh.example.com]:22 ssh-ed25519 AAAAC3Nza…",
            }
        ),
        help_text="The SSH server's known_hosts line (ssh-keyscan prints it). Wharf refuses a "
        "server whose key differs.",
    )
    tls_mode = forms.ChoiceField(
        label="Advanced connection",
        choices=Registry.Tls.choices,
        widget=forms.RadioSelect,
        required=False,
    )
    repositories = forms.CharField(
        label="List of repositories",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "charts/stable\nteam/apps"}),
        help_text="Repository paths inside the registry that hold Helm charts, one per line "
        "(commas work too).",
    )
    is_default = forms.BooleanField(label="Set as default registry", required=False)
    save_without_checking = forms.BooleanField(
        label="Save without checking the connection",
        required=False,
        help_text="For a registry the dashboard cannot reach: the credentials are saved unchecked.",
    )

    class Meta:
        model = Registry
        fields = [
            "provider",
            "registry_type",
            "name",
            "url",
            "auth_type",
            "username",
            "secret",
            "connection_method",
            "proxy_url",
            "proxy_username",
            "proxy_password",
            "ssh_host",
            "ssh_port",
            "ssh_user",
            "ssh_password",
            "ssh_private_key",
            "ssh_host_key",
            "ssh_trust_on_first_use",
            "tls_mode",
            "ca_certificate",
            "push_images",
            "push_helm",
            "chart_source",
            "repositories",
        ]  # fmt: skip  (is_default moves only through save_registry / make_default)
        labels = {"url": "Registry URL", "ca_certificate": "CA certificate (PEM)"}
        widgets = {
            "ca_certificate": forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
            "ssh_port": forms.NumberInput(attrs={"placeholder": "22"}),
        }
        help_texts = {
            "ssh_trust_on_first_use": "With no pinned key, accept the key the server shows on "
            "the first connection and pin it. A changed key is always refused.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.editing = self.instance.pk is not None
        # The choices that decide which fields apply: submitted, or else the instance's
        # values with any initial data on top (ModelForm merges those into self.initial).
        state = self.data if self.is_bound else self.initial
        self.provider_obj = get_provider(state.get("provider") or DEFAULT_PROVIDER)
        provider = self.provider_obj
        self.public = state.get("registry_type") == Registry.Type.PUBLIC and provider.is_oci
        self.auth_type = (
            state.get("auth_type")
            if state.get("auth_type") in provider.auth_types
            else provider.auth_types[0]
        )
        self.connection_method = state.get("connection_method") or Registry.ConnectionMethod.DIRECT
        self.tls = state.get("tls_mode") or Registry.Tls.SECURE
        self.chart_source = _truthy(state.get("chart_source"))

        f = self.fields
        f["provider"].initial = provider.key
        f["auth_type"].choices = [(k, AUTH_LABELS[k]) for k in provider.auth_types]
        f["auth_type"].initial = self.auth_type
        f["url"].help_text = provider.url_help
        f["url"].required = False  # the provider says what is missing, or fills its default
        f["url"].widget.attrs["placeholder"] = provider.default_url or provider.url_help
        f["username"].label = provider.username_label
        f["secret"] = SecretField(
            label=provider.secret_label, multiline=self.auth_type == AUTH_JSON_KEY
        )
        if self.auth_type == AUTH_JSON_KEY:
            # Another id, so that a password typed for another provider is not kept here.
            f["secret"].widget.attrs["id"] = "id_secret_json"
        if provider.default_url and not state.get("url") and not self.is_bound:
            self.initial["url"] = provider.default_url
        if self.editing:
            f["name"].disabled = True
            f["name"].help_text = "The name cannot be changed once the registry exists."
            for name in ("secret", "proxy_password", "ssh_password", "ssh_private_key"):
                if getattr(self.instance, name):
                    f[name].help_text = KEEP_SECRET_HELP
        else:
            f["name"].help_text = NAME_HELP
        if isinstance(self.initial.get("repositories"), list):  # from the instance
            self.initial["repositories"] = "\n".join(self.initial["repositories"])
        self.initial.setdefault("is_default", self.instance.is_default)
        self.style_widgets()
        for name in REFRESH_FIELDS:
            # htmx posts the form to this same page, which answers with the fields for
            # the new choice (the target comes from the template's wrapper).
            f[name].widget.attrs.update({"hx-post": "", "hx-vals": '{"_refresh": "1"}'})

    # --- what the template shows -------------------------------------------------

    @property
    def show_credentials(self) -> bool:
        return not self.public

    @property
    def show_auth_choice(self) -> bool:
        return self.show_credentials and len(self.provider_obj.auth_types) > 1

    @property
    def show_username(self) -> bool:
        return self.show_credentials and self.provider_obj.uses_username(self.auth_type)

    @property
    def show_secret(self) -> bool:
        return self.show_credentials and self.provider_obj.uses_secret(self.auth_type)

    @property
    def show_secret_file(self) -> bool:
        return self.show_secret and self.auth_type == AUTH_JSON_KEY

    @property
    def show_tls(self) -> bool:
        return not self.public or self.provider_obj.tls_options_when_public

    @property
    def show_ca(self) -> bool:
        return self.show_tls and self.tls == Registry.Tls.CA

    @property
    def show_iam_note(self) -> bool:
        return self.show_credentials and self.auth_type == AUTH_IAM_ROLE

    @property
    def show_proxy(self) -> bool:
        return self.connection_method == Registry.ConnectionMethod.PROXY

    @property
    def show_ssh(self) -> bool:
        return self.connection_method == Registry.ConnectionMethod.SSH

    @property
    def uses_aws_token(self) -> bool:
        """Private ECR logs in with a token from the AWS API: a proxy carries that call, an SSH
        tunnel does not (the form says which)."""
        return isinstance(self.provider_obj, EcrProvider) and not self.public

    @property
    def show_repositories(self) -> bool:
        return self.show_oci_options and self.chart_source

    @property
    def show_oci_options(self) -> bool:
        return self.provider_obj.is_oci

    # --- rules ---------------------------------------------------------------

    def clean_repositories(self) -> list[str]:
        # One per line (commas work too); the model trims, deduplicates and checks each path.
        return re.split(r"[\n,]+", self.cleaned_data.get("repositories") or "")

    def clean_ca_certificate(self):
        return (self.cleaned_data.get("ca_certificate") or "").strip()

    def clean_proxy_url(self):
        value, userinfo = _split_userinfo(self.cleaned_data.get("proxy_url") or "")
        if not value:
            return ""
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
        ):
            raise ValidationError("Enter the proxy as http://host:port or https://host:port.")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise ValidationError("The proxy's port must be a number between 1 and 65535.") from exc
        # Credentials pasted into the URL move to their own fields: the URL is shown and
        # logged, the password is stored encrypted.
        user, _, password = userinfo.partition(":")
        self.proxy_userinfo = (unquote(user), unquote(password))
        return urlunsplit(parts._replace(path=""))

    def clean_ssh_host_key(self):
        value = "\n".join(
            line.strip() for line in (self.cleaned_data.get("ssh_host_key") or "").splitlines()
        ).strip()
        try:
            parse_host_keys(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        return value

    def clean_secret_file(self):
        upload = self.cleaned_data.get("secret_file")
        if not upload:
            return ""
        if upload.size > MAX_JSON_KEY_BYTES:
            raise ValidationError(
                "That file is too large to be a service account key (64 KB at most)."
            )
        try:
            return upload.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError("That file is not a text (JSON) file.") from exc

    def clean(self):
        # The registry's rules are the model's (Registry.clean(), run by _post_clean); here only
        # what the inputs mean, and the connection fields shown for the chosen method.
        data = super().clean()
        errors: dict[str, list[str]] = {}

        def fail(field: str | None, message: str) -> None:
            errors.setdefault(field or "__all__", []).append(message)

        self._clean_credentials(data)
        self._clean_connection(data, fail)

        for field, messages in errors.items():
            for message in messages:
                self.add_error(None if field == "__all__" else field, message)
        return data

    def _clean_credentials(self, data) -> None:
        if self.public:
            return  # the model clears a public registry's credentials
        data["auth_type"] = self.auth_type  # the choice shown (the provider's first by default)
        if data.get("secret_file"):
            data["secret"] = data["secret_file"]
        # A blank secret on an edit keeps the stored one.
        uses_secret = self.provider_obj.uses_secret(self.auth_type)
        if not data.get("secret") and uses_secret and self.editing:
            data["secret"] = self.instance.secret

    def _clean_connection(self, data, fail) -> None:
        method = data.get("connection_method")
        if method != Registry.ConnectionMethod.PROXY:
            data.update(proxy_url="", proxy_username="", proxy_password="")
        else:
            if not data.get("proxy_url") and "proxy_url" not in self.errors:
                fail("proxy_url", "Enter the proxy URL, for example http://proxy.example.com:3128.")
            pasted_user, pasted_password = getattr(self, "proxy_userinfo", ("", ""))
            data["proxy_username"] = (data.get("proxy_username") or pasted_user).strip()
            data["proxy_password"] = data.get("proxy_password") or pasted_password
            if not data["proxy_username"]:
                data["proxy_password"] = ""
            elif not data["proxy_password"] and self.editing:
                data["proxy_password"] = self.instance.proxy_password  # blank keeps it
        if method != Registry.ConnectionMethod.SSH:
            data.update(
                ssh_host="", ssh_port=None, ssh_user="", ssh_password="", ssh_private_key="",
                ssh_host_key="", ssh_trust_on_first_use=False,
            )  # fmt: skip
        else:
            data["ssh_host"] = (data.get("ssh_host") or "").strip()
            data["ssh_port"] = data.get("ssh_port") or 22
            if not data["ssh_host"]:
                fail("ssh_host", "Enter the SSH host the tunnel goes through.")
            if not (0 < data["ssh_port"] < 65536):
                fail("ssh_port", "The SSH port must be between 1 and 65535.")
            if not data.get("ssh_user"):
                fail("ssh_user", "Enter the SSH user.")
            for name in ("ssh_password", "ssh_private_key"):
                if not data.get(name) and self.editing:
                    data[name] = getattr(self.instance, name)
            key = data.get("ssh_private_key") or ""
            if key and "PRIVATE KEY-----" not in key:
                fail(
                    "ssh_private_key",
                    "This is not a private key: paste the whole key file, "
                    "including its -----BEGIN … PRIVATE KEY----- line.",
                )
            elif key:
                try:
                    load_private_key(key)
                except ValueError as exc:
                    fail("ssh_private_key", str(exc))
            if not (data.get("ssh_password") or key):
                fail("ssh_password", "Enter the SSH password or a private key.")

        if not self.show_tls:
            data["tls_mode"] = Registry.Tls.SECURE
        data["tls_mode"] = data.get("tls_mode") or Registry.Tls.SECURE
        if data["tls_mode"] == Registry.Tls.CA:
            try:
                data["ca_certificate"] = validate_pem_certificates(data.get("ca_certificate", ""))
            except ValidationError as exc:
                fail("ca_certificate", exc.messages[0])
        else:
            data["ca_certificate"] = ""

    # --- saving ------------------------------------------------------------------

    def connection_changed(self) -> bool:
        """Whether a save changes how Wharf reaches or logs in to the registry."""
        if not self.editing:
            return True
        watched = {"provider", "registry_type", "url", "auth_type", "username", "tls_mode",
                   "ca_certificate", "connection_method", "proxy_url", "proxy_username",
                   "ssh_host", "ssh_port", "ssh_user", "ssh_host_key",
                   "ssh_trust_on_first_use"}  # fmt: skip
        if watched & set(self.changed_data):
            return True
        secrets = ("secret", "proxy_password", "ssh_password", "ssh_private_key")
        return any(self.data.get(n) for n in secrets) or bool(self.files.get("secret_file"))

    def needs_connection_check(self) -> bool:
        return (
            not self.public
            and not self.cleaned_data.get("save_without_checking")
            and self.connection_changed()
        )

    def _post_clean(self):
        # Secrets and cleared fields go through cleaned_data, not the widgets, and onto the
        # instance before the model validates it.
        for name in CLEANED_FIELDS:
            if name in self.cleaned_data:
                setattr(self.instance, name, self.cleaned_data[name])
        super()._post_clean()


def _truthy(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("1", "on", "true", "yes")


def save_registry(form: RegistryForm) -> Registry:
    """Save a valid form; the first registry becomes the default, "Set as default" moves it."""
    registry = form.instance
    want_default = form.cleaned_data.get("is_default")
    with transaction.atomic():
        if form.editing:
            # The flag only moves through make_default(), never by a plain save.
            registry.is_default = Registry.objects.filter(pk=registry.pk, is_default=True).exists()
        else:
            registry.is_default = not Registry.objects.exists()
        registry.save()
        if want_default and not registry.is_default:
            registry.make_default()
    return registry
