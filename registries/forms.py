"""The Container/OCI Registry form: every field of the SPEC, per provider.

The rules are the model's (``Registry.clean()``, asking the provider, and
``ConnectionSettings.clean()`` for how it is reached); this form decides which fields are
shown, reads an uploaded key file, and keeps a stored secret left blank.
"""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction

from config.forms import (
    KEEP_SECRET_HELP,
    CheckedSaveForm,
    ConnectionFieldsForm,
    ModelRulesFormMixin,
    SecretField,
    StyledFormMixin,
    refresh_attrs,
)
from registries.models import Registry
from registries.providers import (
    AUTH_IAM_ROLE,
    AUTH_JSON_KEY,
    AUTH_LABELS,
    PROVIDER_CHOICES,
    PROVIDERS,
    EcrProvider,
    get_provider,
)

MAX_JSON_KEY_BYTES = 64 * 1024

DEFAULT_PROVIDER = PROVIDER_CHOICES[0][0]
DEFAULT_URLS = {"", *(p.default_url for p in PROVIDERS.values())}
NAME_HELP = "3–30 characters: lowercase letters, digits and -, starting with a letter."


# Inputs whose change re-renders the fields that depend on them (htmx), and which fields
# those are (elements of registries/partials/_form_body.html); the connection method's and
# TLS mode's are ConnectionFieldsForm's.
REFRESH_FIELDS = {
    # The URL's placeholder and default, and the registry types offered, are the provider's.
    "provider": refresh_attrs("registry-dependent", also="#help-url,#id_url,#field-registry_type"),
    "registry_type": refresh_attrs("registry-dependent"),
    "auth_type": refresh_attrs("registry-credentials"),
    "chart_source": refresh_attrs("registry-repositories"),
    "repository_scope": refresh_attrs("registry-repositories"),
}


class RepositoryListField(forms.CharField):
    """The "List of repositories" (a list in the model) as text: one path per line (commas work
    too). The model trims, deduplicates and checks each path."""

    widget = forms.Textarea

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", "List of repositories")
        kwargs.setdefault(
            "help_text",
            "Repository paths inside the registry that hold Helm charts. One repository path "
            "per line (commas work too).",
        )
        super().__init__(**kwargs)
        self.widget.attrs.update(
            {"rows": 3, "spellcheck": "false", "placeholder": "charts/stable\nteam/apps"}
        )

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list | tuple) else value

    def prepare_initial(self, initial: dict, name: str = "repositories") -> None:
        """The instance's list as the text the form shows (and posts back unchanged)."""
        if isinstance(initial.get(name), list | tuple):
            initial[name] = self.prepare_value(initial[name])

    def to_python(self, value) -> list[str]:  # type: ignore[override]
        text = super().to_python(value)
        return [path for path in re.split(r"[\r\n,]+", text) if path.strip()]


class RegistryForm(
    ModelRulesFormMixin, StyledFormMixin, CheckedSaveForm, ConnectionFieldsForm, forms.ModelForm
):
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
    repository_scope = forms.ChoiceField(
        label="Repositories to index",
        choices=Registry.Scope.choices,
        initial=Registry.Scope.LIST,
        required=False,
        widget=forms.RadioSelect,
    )
    repositories = RepositoryListField()
    repository_prefixes = RepositoryListField(
        label="Path prefixes (optional)",
        help_text="Only the repositories under these paths, e.g. charts: one per line (commas "
        "work too). Empty: every repository the registry lists. Each sync lists the registry "
        "again, indexes the new repositories that hold Helm charts and marks the charts of "
        "vanished ones removed upstream.",
    )
    is_default = forms.BooleanField(label="Set as default registry", required=False)
    save_without_checking = forms.BooleanField(
        label=CheckedSaveForm.base_fields["save_without_checking"].label,
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
            *ConnectionFieldsForm.CONNECTION_FIELDS,
            "push_images",
            "push_helm",
            "chart_source",
            "repository_scope",
            "repositories",
            "repository_prefixes",
        ]  # fmt: skip  (is_default moves only through save_registry / make_default)
        labels = {"url": "Registry URL"}

    # Fields whose value clean() decides (kept, cleared or defaulted), set on the instance as
    # is before the model validates it (ModelForm would leave out an omitted field with a
    # default).
    CLEANED_FIELDS = (
        "secret", "auth_type", "username", "repositories", "repository_scope",
        "repository_prefixes", "is_default", *ConnectionFieldsForm.CONNECTION_FIELDS,
    )  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.editing = self.instance.pk is not None
        # The choices that decide which fields apply: submitted, or else the instance's
        # values with any initial data on top (ModelForm merges those into self.initial).
        state = self.data if self.is_bound else self.initial
        self.provider_obj = get_provider(state.get("provider") or DEFAULT_PROVIDER)
        provider = self.provider_obj
        # Only the choices the provider takes are offered, its first (the seed's default)
        # picked; a submitted one it refuses is left for the model to explain.
        submitted_type = state.get("registry_type")
        self.registry_type = (
            submitted_type
            if submitted_type in provider.registry_types
            else provider.registry_types[0]
        )
        self.public = self.registry_type == Registry.Type.PUBLIC
        self.auth_type = (
            state.get("auth_type")
            if state.get("auth_type") in provider.auth_types
            else provider.auth_types[0]
        )
        self.init_connection_fields(state)
        self.chart_source = _truthy(state.get("chart_source"))
        scope = state.get("repository_scope")
        self.repository_scope = scope if scope in Registry.Scope.values else Registry.Scope.LIST

        f = self.fields
        f["provider"].initial = provider.key
        f["auth_type"].choices = [(k, AUTH_LABELS[k]) for k in provider.auth_types]
        if not self.is_bound or submitted_type == self.registry_type:
            f["registry_type"].choices = [
                (k, label) for k, label in Registry.Type.choices if k in provider.registry_types
            ]
        if not self.is_bound:
            # Over the instance's values (a new registry has none): what the form shows.
            self.initial["provider"] = provider.key
            self.initial["registry_type"] = self.registry_type
            self.initial["auth_type"] = self.auth_type
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
        url = state.get("url") or ""
        rechosen = url in DEFAULT_URLS and url != self.instance.url  # filled in, not typed
        if not self.is_bound and (not url or rechosen):
            # Blank, or another provider's default after a new choice: this provider's.
            self.initial["url"] = provider.default_url
        if self.editing:
            f["name"].disabled = True
            f["name"].help_text = "The name cannot be changed once the registry exists."
            if self.instance.secret:
                f["secret"].help_text = KEEP_SECRET_HELP
        else:
            f["name"].help_text = NAME_HELP
        f["repositories"].prepare_initial(self.initial)
        f["repository_prefixes"].prepare_initial(self.initial, "repository_prefixes")
        if not provider.lists_repositories:
            f["repository_scope"].help_text = provider.listing_refusal()
        self.initial.setdefault("is_default", self.instance.is_default)
        self.style_widgets()
        for name, attrs in REFRESH_FIELDS.items():
            f[name].widget.attrs.update(attrs)

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
    def connection_uses(self) -> str:
        """What goes through the proxy, for the note under its fields."""
        uses = "Test connection, chart sync, chart files"
        return uses + (", and the AWS call for the ECR token" if self.uses_aws_token else "")

    tunnel_reaches = "the registry (and its token service)"

    @property
    def tunnel_note(self) -> str:
        if self.uses_aws_token:
            return " The AWS call for the ECR token does not use the tunnel: it goes direct."
        return ""

    @property
    def show_iam_note(self) -> bool:
        return self.show_credentials and self.auth_type == AUTH_IAM_ROLE

    @property
    def uses_aws_token(self) -> bool:
        """Private ECR logs in with a token from the AWS API: a proxy carries that call, an SSH
        tunnel does not (the form says which)."""
        return isinstance(self.provider_obj, EcrProvider) and not self.public

    @property
    def show_repositories(self) -> bool:
        """The hand-written list, when it is what the source indexes."""
        return self.show_scope and not self.lists_all

    @property
    def show_scope(self) -> bool:
        return self.show_oci_options and self.chart_source

    @property
    def lists_all(self) -> bool:
        return self.show_scope and self.repository_scope == Registry.Scope.ALL

    @property
    def listing_refusal(self) -> str:
        """Why "All repositories" cannot work for this provider, or ""."""
        provider = self.provider_obj
        return "" if provider.lists_repositories else provider.listing_refusal()

    @property
    def show_oci_options(self) -> bool:
        return self.provider_obj.is_oci

    # --- rules ---------------------------------------------------------------

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
        # The registry's rules are the model's (Registry.clean(), and ConnectionSettings.clean()
        # for the connection method and TLS), run by _post_clean; here only what the inputs
        # mean, and the secrets a blank field keeps.
        data = super().clean()
        self._clean_credentials(data)
        self.keep_connection_secrets(data)
        if self.editing and self.show_scope and not self.show_repositories:
            # Hidden while every repository is listed: the hand-written list is kept.
            data["repositories"] = self.instance.repositories
        if not self.show_tls:
            data["tls_mode"] = Registry.Tls.SECURE
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

    # --- saving ------------------------------------------------------------------

    def connection_changed(self) -> bool:
        """Whether a save changes how Wharf reaches or logs in to the registry."""
        if not self.editing:
            return True
        watched = {"provider", "registry_type", "url", "auth_type", "username"}
        if watched & set(self.changed_data) or self.connection_changed_fields():
            return True
        return bool(self.data.get("secret")) or bool(self.files.get("secret_file"))

    def needs_connection_check(self) -> bool:
        # A public registry has no credentials to check.
        return not self.public and super().needs_connection_check()


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
