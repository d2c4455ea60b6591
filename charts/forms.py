"""The Chart Repositories form (a classic Helm repository), and the "Push chart" form."""

from __future__ import annotations

from django import forms
from django.db import transaction

from charts.models import HelmRepository
from charts.sources import sync_helm_repository_source
from charts.uploads import (
    PROVENANCE_MAX_BYTES,
    PushInputError,
    check_archive,
    check_prefix,
    check_provenance,
    max_push_bytes,
    upload_for,
)
from config.forms import (
    KEEP_SECRET_HELP,
    CheckedSaveForm,
    ConnectionFieldsForm,
    ModelRulesFormMixin,
    SecretField,
    StyledFormMixin,
    refresh_attrs,
)

# A change to any of these means the index must be fetched again from scratch.
CONNECTION_FIELDS = ("url", "access", "username", "password")


class HelmRepositoryForm(
    ModelRulesFormMixin, StyledFormMixin, CheckedSaveForm, ConnectionFieldsForm, forms.ModelForm
):
    access = forms.ChoiceField(
        label="Repository type", choices=HelmRepository.Access.choices, widget=forms.RadioSelect
    )
    password = SecretField(label="Password")

    class Meta:
        model = HelmRepository
        fields = [
            "name",
            "url",
            "access",
            "username",
            "password",
            *ConnectionFieldsForm.CONNECTION_FIELDS,
            "archive_hosts",
            "active",
        ]
        labels = {"url": "Repository URL"}
        help_texts = {
            "name": "3–30 characters: lowercase letters, digits and -, starting with a letter.",
            "url": "The folder that holds index.yaml, e.g. https://charts.example.com/stable.",
        }
        widgets = {
            "url": forms.TextInput(attrs={"placeholder": "https://charts.example.com/stable"}),
            "archive_hosts": forms.Textarea(
                attrs={"rows": 2, "spellcheck": "false", "placeholder": "github.com"}
            ),
        }

    CLEANED_FIELDS = ("username", "password", *ConnectionFieldsForm.CONNECTION_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.editing = self.instance.pk is not None
        state = self.data if self.is_bound else {**self.initial}
        self.access = state.get("access") or self.instance.access or HelmRepository.Access.PUBLIC
        self.init_connection_fields(state, tls_label="TLS")
        self.fields["save_without_checking"].help_text = (
            "For a repository the dashboard cannot reach: it is saved without reading its "
            "index.yaml first."
        )
        if self.editing:
            self.fields["name"].disabled = True
            self.fields["name"].help_text = "The name cannot be changed."
            if self.instance.password:
                self.fields["password"].help_text = KEEP_SECRET_HELP
        # Only the credentials depend on the access type (the connection method's and TLS
        # mode's fields are ConnectionFieldsForm's).
        self.fields["access"].widget.attrs.update(refresh_attrs("helm-credentials"))

    @property
    def show_credentials(self) -> bool:
        return self.access == HelmRepository.Access.PRIVATE

    connection_uses = "Test connection, index syncs and chart archive downloads"
    tunnel_reaches = "the repository (and the hosts its chart archives come from)"

    def clean(self):
        # The URL and credential rules are the model's (HelmRepository.clean()), and so are
        # the connection method's and TLS rules (ConnectionSettings.clean()): _post_clean
        # runs them on the instance, once the form has put kept secrets on it.
        data = super().clean()
        self.password_typed = bool(data.get("password"))
        if not self.password_typed and self.instance.pk:
            data["password"] = self.instance.password  # blank keeps the stored one
        self.keep_connection_secrets(data)
        return data

    def connection_changed(self) -> bool:
        return (
            not self.editing
            or any(name in self.changed_data for name in CONNECTION_FIELDS)
            or self.password_typed
            or self.connection_changed_fields()
        )


def save_helm_repository(form: HelmRepositoryForm) -> HelmRepository:
    changed = form.connection_changed() or "active" in form.changed_data
    with transaction.atomic():
        repository = form.save()
        sync_helm_repository_source(repository, changed=changed)
    return repository


class ChartPushForm(StyledFormMixin, forms.Form):
    """A packaged chart (and its provenance) to push; every check runs before anything is kept."""

    archive = forms.FileField(
        label="Chart package (.tgz)",
        help_text="The archive “helm package” wrote, e.g. web-1.2.0.tgz.",
        widget=forms.ClearableFileInput(attrs={"accept": ".tgz,.tar.gz,application/gzip"}),
    )
    provenance = forms.FileField(
        label="Provenance file (.prov, optional)",
        required=False,
        help_text="Written by “helm package --sign”; pushed beside the chart for “helm verify”.",
        widget=forms.ClearableFileInput(attrs={"accept": ".prov"}),
    )
    prefix = forms.CharField(
        label="Repository prefix (optional)",
        required=False,
        max_length=150,
        help_text="The chart goes to <registry>/<prefix>/<chart name>, e.g. “charts”.",
        widget=forms.TextInput(attrs={"placeholder": "charts", "spellcheck": "false"}),
    )
    overwrite = forms.BooleanField(
        label="Overwrite the version if the registry already has it with different content",
        required=False,
    )

    def clean_archive(self) -> bytes:
        upload = self.cleaned_data["archive"]
        limit = max_push_bytes()
        if upload.size > limit:  # before reading it into memory
            raise forms.ValidationError(
                f"The archive is {upload.size:,} bytes, more than the {limit:,} allowed."
            )
        data = upload.read()
        try:
            self.chart = check_archive(data)
        except PushInputError as exc:
            raise forms.ValidationError(str(exc)) from None
        return data

    def clean_provenance(self) -> bytes:
        upload = self.cleaned_data.get("provenance")
        if not upload:
            return b""
        if upload.size > PROVENANCE_MAX_BYTES:
            raise forms.ValidationError(
                f"The provenance file is {upload.size:,} bytes, more than the "
                f"{PROVENANCE_MAX_BYTES:,} allowed."
            )
        return upload.read()

    def clean_prefix(self) -> str:
        try:
            return check_prefix(self.cleaned_data.get("prefix", ""))
        except PushInputError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        data = super().clean()
        archive = data.get("archive")
        if archive is None:
            return data
        try:
            if data.get("provenance"):
                check_provenance(data["provenance"], archive)
            if "prefix" in data:
                self.upload = upload_for(
                    self.chart, archive, data.get("provenance") or b"", data["prefix"]
                )
        except PushInputError as exc:
            self.add_error(exc.field, str(exc))
        return data
