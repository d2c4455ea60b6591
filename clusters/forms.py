"""Forms of the cluster, environment and registry credential access screens."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from clusters.models import Cluster, Environment, RegistryAccess
from config.forms import (
    KEEP_SECRET_HELP,
    CheckedSaveForm,
    ModelRulesFormMixin,
    PkChoicesField,
    SecretField,
    StyledFormMixin,
)


class ClusterForm(ModelRulesFormMixin, StyledFormMixin, CheckedSaveForm, forms.ModelForm):
    api_url = forms.URLField(label="API server URL", max_length=255, assume_scheme="https")
    token = SecretField(label="Bearer token", multiline=False)

    class Meta:
        model = Cluster
        fields = ["name", "api_url", "token", "ca_certificate", "skip_tls_verify", "active"]
        widgets = {"ca_certificate": forms.Textarea(attrs={"rows": 4, "spellcheck": "false"})}
        help_texts = {
            "name": "3–30 characters: lowercase letters, digits and -, starting with a letter.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["api_url"].widget.attrs["placeholder"] = "https://kubernetes.example.com:6443"
        if self.instance.pk:
            self.fields["name"].disabled = True
            if self.instance.token:
                self.fields["token"].help_text = KEEP_SECRET_HELP
        self.fields["save_without_checking"].help_text = (
            "For a cluster the dashboard cannot reach yet: it is saved unchecked, and its "
            "reconciles say what fails."
        )

    def clean(self):
        # The cluster's rules are the model's (Cluster.clean(), run by _post_clean).
        data = super().clean()
        self.token_typed = bool((data.get("token") or "").strip())
        if not self.token_typed and self.instance.pk:
            data["token"] = self.instance.token  # blank keeps the stored one
        return data

    def connection_changed(self) -> bool:
        """Whether a save changes how Wharf reaches the API server (or makes it reach it)."""
        if self.instance.pk is None or self.token_typed:
            return True
        watched = {"api_url", "ca_certificate", "skip_tls_verify", "active"}
        return bool(watched & set(self.changed_data))

    def needs_connection_check(self) -> bool:
        # Wharf contacts only active clusters: an inactive one is saved as it is.
        return bool(self.cleaned_data.get("active")) and super().needs_connection_check()


class EnvironmentForm(ModelRulesFormMixin, StyledFormMixin, forms.ModelForm):
    class Meta:
        model = Environment
        fields = ["name", "cluster", "namespace"]
        help_texts = {
            "name": "3–30 characters: lowercase letters, digits and -, starting with a letter.",
            "namespace": "Wharf keeps the pull secrets of the chosen registries in this namespace.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cluster"].empty_label = None


class ClusterChoicesField(PkChoicesField):
    """Clusters by pk; a pk too large for any database is an invalid choice, not a crash
    (SQLite raises OverflowError for the IN (...) query that checks the choices)."""


class ClusterChoiceRuleMixin:
    """For a form that saves an access rule: the model checks its cluster choice too.

    A many-to-many choice reaches the model only once the rule is saved, so after the model's
    clean() the form hands it the clusters chosen (:meth:`RegistryAccess.validate_clusters`).
    """

    def _post_clean(self):
        super()._post_clean()
        if "clusters" in self.cleaned_data and "mode" not in self._errors:
            try:
                self.instance.validate_clusters(self.cleaned_data["clusters"])
            except ValidationError as exc:
                self._update_errors(exc)


class RegistryAccessForm(
    ClusterChoiceRuleMixin, ModelRulesFormMixin, StyledFormMixin, forms.ModelForm
):
    mode = forms.ChoiceField(
        label="Registry credential access",
        choices=RegistryAccess.Mode.choices,
        widget=forms.RadioSelect,
    )
    credentials = forms.ChoiceField(
        label="Credentials", choices=RegistryAccess.Credentials.choices, widget=forms.RadioSelect
    )
    clusters = ClusterChoicesField(
        queryset=Cluster.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Clusters",
    )
    namespaces = forms.ChoiceField(
        label="Namespaces", choices=RegistryAccess.Namespaces.choices, widget=forms.RadioSelect
    )
    service_accounts = forms.ChoiceField(
        label="ServiceAccounts",
        choices=RegistryAccess.ServiceAccounts.choices,
        widget=forms.RadioSelect,
    )

    class Meta:
        model = RegistryAccess
        fields = [
            "mode",
            "all_clusters",
            "clusters",
            "namespaces",
            "excluded_namespaces",
            "namespace_selector",
            "credentials",
            "secret_name",
            "add_to_default_service_account",
            "service_accounts",
            "service_account_names",
        ]
        widgets = {
            "excluded_namespaces": forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
            "service_account_names": forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["secret_name"].widget.attrs["placeholder"] = "regcred"
        self.fields["namespace_selector"].widget.attrs.update(
            {"placeholder": "team in (web,api),!legacy", "spellcheck": "false"}
        )
        self.fields["service_account_names"].widget.attrs["placeholder"] = "builder, deployer"
        self.fields["all_clusters"].help_text = "Every cluster, including clusters added later."
        self.fields["clusters"].widget.attrs.pop("class", None)
