"""Form pieces every screen shares: secret inputs, styling, connection fields, and the
model's rules as errors; and the forms of the Roles screen."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, ValidationError
from django.db.models import Q
from django.utils.text import capfirst

from config.connections import ConnectionMethod, Tls, split_proxy_credentials
from config.http import TLS_CHOICES
from config.models import GroupRole, UserRole

# The check lives below the forms (models use it); still importable from here.
from config.validators import validate_pem_certificates
from registries.models import Registry

__all__ = [
    "KEEP_SECRET_HELP",
    "CheckedSaveForm",
    "ConnectionFieldsForm",
    "ModelRulesFormMixin",
    "PkChoicesField",
    "ProxyUrlField",
    "SecretField",
    "StyledFormMixin",
    "refresh_attrs",
    "validate_pem_certificates",
]

KEEP_SECRET_HELP = "Leave blank to keep the stored value."


def refresh_attrs(fragment: str, *, also: str = "") -> dict[str, str]:
    """htmx attributes for an input whose change re-renders only the fields that depend on it.

    htmx posts the form to its own page with ``_refresh``; the view answers with the page for
    the new choice, of which only the element ``#fragment`` (and the ``also`` elements, out of
    band) is swapped in: everything else, and anything typed meanwhile (static/wharf.js), stays
    as it is. One form's refreshes run one at a time, the latest queued, so a slow answer
    never lands after a later one.
    """
    attrs = {
        "hx-post": "",
        "hx-vals": '{"_refresh": "1"}',
        "hx-target": f"#{fragment}",
        "hx-select": f"#{fragment}",
        "hx-swap": "outerHTML",
        "hx-sync": "closest form:queue last",
    }
    if also:
        attrs["hx-select-oob"] = also
    return attrs


class SecretField(forms.CharField):
    """A secret input that never renders a value; blank on an edit form means "keep"."""

    def __init__(self, *args, multiline: bool = False, **kwargs):
        # hx-preserve: when htmx re-renders the form for another choice, what the user
        # typed stays in the browser; the server never echoes it back.
        widget = (
            forms.Textarea(
                attrs={
                    "rows": 4,
                    "autocomplete": "off",
                    "spellcheck": "false",
                    "hx-preserve": "true",
                }
            )
            if multiline
            else forms.PasswordInput(
                render_value=False, attrs={"autocomplete": "new-password", "hx-preserve": "true"}
            )
        )
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        super().__init__(*args, widget=widget, **kwargs)

    def bound_data(self, data, initial):
        # A re-rendered form (after an error) must not echo a typed secret either.
        return ""

    def prepare_value(self, value):
        return ""


class StyledFormMixin:
    """Bootstrap classes on every widget, so templates render fields with one include."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.style_widgets()

    def style_widgets(self) -> None:
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.RadioSelect):
                continue  # its class would land on the group's wrapper too; CSS styles it
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = css


class ModelRulesFormMixin:
    """For a ModelForm whose model's ``clean()`` holds the rules (Wharf's forms and the admin's).

    ModelForm's ``_post_clean`` validates the instance the form built and puts the model's
    errors on the fields. Two cases need more care than Django gives them:

    - a field the form itself refused keeps the form's message alone: the model then saw the
      stored value, not what was typed, so its message would be about the wrong value;
    - an error on a model field the form does not show (the admin leaves secrets out) would
      make Django raise; it goes above the form instead, named (:meth:`hidden_field_error`).
    """

    def hidden_field_error(self, field: str, message: str) -> str:
        try:
            label = capfirst(self._meta.model._meta.get_field(field).verbose_name)
        except FieldDoesNotExist:
            label = field
        return f"{label}: {message}"

    def _update_errors(self, errors):
        if not hasattr(errors, "error_dict"):
            return super()._update_errors(errors)
        kept: dict[str, list] = {}
        for field, messages in errors.error_dict.items():
            if field == NON_FIELD_ERRORS:
                kept.setdefault(field, []).extend(messages)
            elif field not in self.fields:
                kept.setdefault(NON_FIELD_ERRORS, []).extend(
                    self.hidden_field_error(field, text)
                    for text in ValidationError(messages).messages
                )
            elif field not in self._errors:
                kept.setdefault(field, []).extend(messages)
        if kept:
            super()._update_errors(ValidationError(kept))
        return None


class CheckedSaveForm(forms.Form):
    """A form whose save is refused when "Test connection" fails, unless the user ticks
    "Save without checking the connection" (``ObjectEditView.before_save`` runs the check).

    Mixed into a ModelForm that defines ``connection_changed()``: an edit that leaves the
    connection as it was is not checked again.
    """

    save_without_checking = forms.BooleanField(
        label="Save without checking the connection",
        required=False,
        help_text="For a server the dashboard cannot reach: the settings are saved unchecked.",
    )

    def connection_changed(self) -> bool:
        raise NotImplementedError

    def needs_connection_check(self) -> bool:
        return not self.cleaned_data.get("save_without_checking") and self.connection_changed()


class ProxyUrlField(forms.CharField):
    """The proxy URL; a pasted ``user:password@`` is never rendered back (it is moved out)."""

    def bound_data(self, data, initial):
        return split_proxy_credentials(data or "")[0]


class ConnectionFieldsForm(forms.Form):
    """The fields of a :class:`~config.connections.ConnectionSettings` model, declared once.

    Mixed into a ModelForm (``class RegistryForm(StyledFormMixin, ConnectionFieldsForm,
    forms.ModelForm)``) whose ``Meta.fields`` include ``CONNECTION_FIELDS``; the template
    partial ``partials/_connection_fields.html`` lays them out. The rules are the model's
    (``ConnectionSettings.clean``); the form moves credentials pasted into the proxy URL
    to their fields and keeps stored secrets left blank on an edit.
    """

    CONNECTION_FIELDS = [
        "connection_method", "proxy_url", "proxy_username", "proxy_password", "ssh_host",
        "ssh_port", "ssh_user", "ssh_password", "ssh_private_key", "ssh_host_key",
        "ssh_trust_on_first_use", "tls_mode", "ca_certificate",
    ]  # fmt: skip
    CONNECTION_SECRETS = ("proxy_password", "ssh_password", "ssh_private_key")
    # Fields a save changes how Wharf reaches the server (a secret typed counts too).
    CONNECTION_WATCHED = (
        "tls_mode", "ca_certificate", "connection_method", "proxy_url", "proxy_username",
        "ssh_host", "ssh_port", "ssh_user", "ssh_host_key", "ssh_trust_on_first_use",
    )  # fmt: skip

    connection_method = forms.ChoiceField(
        label="Connection method",
        choices=ConnectionMethod.choices,
        widget=forms.RadioSelect,
        required=False,  # none chosen (a form posted by a script) is Direct
    )
    proxy_url = ProxyUrlField(
        label="Proxy URL",
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "http://proxy.example.com:3128"}),
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
        choices=TLS_CHOICES,
        widget=forms.RadioSelect,
        required=False,
    )

    def init_connection_fields(self, state, *, tls_label: str = "Advanced connection") -> None:
        """Set up the fields for the choices in ``state``: the submitted data, or the initial
        values (which a ModelForm fills from the instance)."""
        instance = self.instance
        self.connection_method = state.get("connection_method") or ConnectionMethod.DIRECT
        self.tls = state.get("tls_mode") or Tls.SECURE
        f = self.fields
        target = instance.connection_target
        f["tls_mode"].label = tls_label
        f["proxy_url"].help_text = (
            f"HTTPS to the {target} goes through CONNECT, so TLS is still checked end to end "
            f"as chosen under {tls_label}."
        )
        f["ssh_port"].widget.attrs["placeholder"] = "22"
        f["ssh_trust_on_first_use"].help_text = (
            "With no pinned key, accept the key the server shows on the first connection and "
            "pin it. A changed key is always refused."
        )
        f["ca_certificate"].label = "CA certificate (PEM)"
        f["ca_certificate"].widget.attrs.update({"rows": 4, "spellcheck": "false"})
        # A new choice re-renders only its own fields (partials/_connection_fields.html and
        # the CA certificate's wrapper).
        f["connection_method"].widget.attrs.update(refresh_attrs("connection-dependent"))
        f["tls_mode"].widget.attrs.update(refresh_attrs("tls-dependent"))
        if instance.pk is not None:
            for name in self.CONNECTION_SECRETS:
                if getattr(instance, name):
                    f[name].help_text = KEEP_SECRET_HELP

    # What the notes under the proxy and tunnel fields say (forms say more of their own).
    connection_uses = "every check and sync"
    tunnel_note = ""

    @property
    def tunnel_reaches(self) -> str:
        return f"the {self.instance.connection_target}"

    @property
    def show_proxy(self) -> bool:
        return self.connection_method == ConnectionMethod.PROXY

    @property
    def show_ssh(self) -> bool:
        return self.connection_method == ConnectionMethod.SSH

    @property
    def show_ca(self) -> bool:
        return self.tls == Tls.CA

    def clean_connection_method(self) -> str:
        return self.cleaned_data.get("connection_method") or ConnectionMethod.DIRECT

    def clean_proxy_url(self) -> str:
        url, user, password = split_proxy_credentials(self.cleaned_data.get("proxy_url") or "")
        self.proxy_userinfo = (user, password)
        return url

    def keep_connection_secrets(self, data: dict) -> None:
        """Credentials pasted into the proxy URL go to their fields, and a secret left blank
        on an edit keeps the stored one; the model's rules then judge the result."""
        method = data.get("connection_method")
        editing = self.instance.pk is not None
        if method == ConnectionMethod.PROXY:
            pasted_user, pasted_password = getattr(self, "proxy_userinfo", ("", ""))
            data["proxy_username"] = (data.get("proxy_username") or pasted_user).strip()
            data["proxy_password"] = data.get("proxy_password") or pasted_password
            if data["proxy_username"] and not data["proxy_password"] and editing:
                data["proxy_password"] = self.instance.proxy_password
        if method == ConnectionMethod.SSH and editing:
            for name in ("ssh_password", "ssh_private_key"):
                if not data.get(name):
                    data[name] = getattr(self.instance, name)

    def connection_changed_fields(self) -> bool:
        """Whether the connection fields of a save change how Wharf reaches the server."""
        if set(self.CONNECTION_WATCHED) & set(self.changed_data):
            return True
        return any(self.data.get(name) for name in self.CONNECTION_SECRETS)

    # Fields whose value clean() decides (kept, cleared, moved), set on the instance before
    # the model's rules run: secrets go through cleaned_data, never through the widgets.
    CLEANED_FIELDS: tuple[str, ...] = tuple(CONNECTION_FIELDS)

    def _post_clean(self):
        for name in self.CLEANED_FIELDS:
            if name in self.cleaned_data:
                setattr(self.instance, name, self.cleaned_data[name])
        super()._post_clean()


class PkChoicesField(forms.ModelMultipleChoiceField):
    """Objects by pk; a pk too large for any database is an invalid choice, not a crash."""

    def _check_values(self, value):
        for pk in value or ():
            text = str(pk).strip()
            if text.isdigit() and int(text) >= 2**63:
                raise forms.ValidationError(
                    self.error_messages["invalid_choice"],
                    code="invalid_choice",
                    params={"value": text},
                )
        return super()._check_values(value)


# --- the Roles screen (its rules: UserRole.clean, GroupRole.validate_mapping) ---------


class UserRoleForm(ModelRulesFormMixin, StyledFormMixin, forms.ModelForm):
    class Meta:
        model = UserRole
        fields = ["user", "role"]
        help_texts = {
            "role": "Viewer: the Chart Store. Operator: also Sync now, Push chart, Reconcile "
            "now and Test pull. Admin: also every Global Configuration.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        granted = UserRole.objects.exclude(pk=self.instance.pk).values("user")
        users = get_user_model().objects.filter(is_active=True, is_superuser=False)
        users = users.exclude(pk__in=granted)  # a superuser is an admin always
        self.fields["user"].queryset = users.order_by("username")
        self.fields["user"].empty_label = None


class GroupRoleForm(ModelRulesFormMixin, StyledFormMixin, forms.ModelForm):
    group_name = forms.CharField(
        label="Group",
        max_length=Group._meta.get_field("name").max_length,
        help_text="The group's name as the identity provider sends it (the OIDC groups claim, "
        "the LDAP group's name); made here if nobody of it has signed in yet.",
    )
    push_registries = PkChoicesField(
        queryset=Registry.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Push registries",
    )

    class Meta:
        model = GroupRole
        fields = ["group_name", "role", "push_limited", "push_registries"]
        help_texts = UserRoleForm.Meta.help_texts

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.fields["group_name"].initial = self.instance.group.name
        # Registries that take charts, and any chosen before they stopped taking them.
        chosen = (
            self.instance.push_registries.all() if self.instance.pk else Registry.objects.none()
        )
        self.fields["push_registries"].queryset = Registry.objects.filter(
            Q(push_helm=True) | Q(pk__in=chosen.values("pk"))
        ).order_by("name")

    def clean_group_name(self) -> str:
        return self.cleaned_data["group_name"].strip()

    def clean(self):
        cleaned = super().clean()
        if "group_name" in cleaned and "role" in cleaned:
            self.instance.role = cleaned["role"]
            self.instance.push_limited = cleaned.get("push_limited", False)
            try:
                self.instance.validate_mapping(
                    cleaned["group_name"], cleaned.get("push_registries") or []
                )
            except ValidationError as exc:
                for field, messages in exc.message_dict.items():
                    for message in messages:
                        self.add_error(field, message)
        return cleaned

    def save(self, commit: bool = True):
        mapping = super().save(commit=False)
        mapping.group, _ = Group.objects.get_or_create(name=self.cleaned_data["group_name"])
        mapping.save()
        self.save_m2m()
        return mapping
