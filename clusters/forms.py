"""Forms of the cluster, environment and registry credential access screens."""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms

from clusters import kube
from clusters.models import Cluster, Environment, RegistryAccess
from config.forms import KEEP_SECRET_HELP, SecretField, StyledFormMixin, validate_pem_certificates


class ClusterForm(StyledFormMixin, forms.ModelForm):
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

    def clean_api_url(self) -> str:
        url = self.cleaned_data["api_url"].strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise forms.ValidationError(
                "Enter the API server URL with its scheme, for example https://10.0.0.1:6443."
            )
        if parts.query or parts.fragment:
            raise forms.ValidationError("The API server URL takes no query or fragment.")
        if parts.username is not None or parts.password is not None:
            # Never sent by the client, and the URL is shown on pages and in errors.
            raise forms.ValidationError(
                "The API server URL takes no user name or password: Wharf signs in with the "
                "bearer token."
            )
        return url

    def clean_ca_certificate(self) -> str:
        value = self.cleaned_data.get("ca_certificate", "")
        return validate_pem_certificates(value) if value.strip() else ""

    def clean(self):
        data = super().clean()
        token = data.get("token") or self.instance.token
        if not token:
            self.add_error("token", "Enter the bearer token Wharf uses for this cluster.")
        elif not kube.token_is_valid(token.strip()):
            self.add_error("token", kube.BAD_TOKEN.capitalize() + ".")
        else:
            data["token"] = token.strip()
        if data.get("skip_tls_verify") and data.get("ca_certificate"):
            self.add_error(
                "skip_tls_verify",
                "Either paste the CA certificate or skip TLS verification, not both.",
            )
        url = data.get("api_url", "")
        if url.startswith("http://") and data.get("ca_certificate"):
            self.add_error("ca_certificate", "A CA certificate needs an https:// API server URL.")
        return data


class EnvironmentForm(StyledFormMixin, forms.ModelForm):
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

    def clean_namespace(self) -> str:
        return self.cleaned_data["namespace"].strip()


class ClusterChoicesField(forms.ModelMultipleChoiceField):
    """Clusters by pk; a pk too large for any database is an invalid choice, not a crash
    (SQLite raises OverflowError for the IN (...) query that checks the choices)."""

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


class RegistryAccessForm(StyledFormMixin, forms.ModelForm):
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

    class Meta:
        model = RegistryAccess
        fields = [
            "mode",
            "all_clusters",
            "clusters",
            "credentials",
            "secret_name",
            "add_to_default_service_account",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["secret_name"].widget.attrs["placeholder"] = "regcred"
        self.fields["all_clusters"].help_text = "Every cluster, including clusters added later."
        self.fields["clusters"].widget.attrs.pop("class", None)

    def clean(self):
        data = super().clean()
        include = data.get("mode") == RegistryAccess.Mode.INCLUDE
        if not include:
            data["all_clusters"] = False
        elif not data.get("all_clusters") and not data.get("clusters"):
            self.add_error(
                "clusters", "Pick the clusters to inject credentials into, or tick “All clusters”."
            )
        if data.get("credentials") == RegistryAccess.Credentials.SECRET:
            if not data.get("secret_name"):
                self.add_error(
                    "secret_name", "Enter the name of the image pull secret in the clusters."
                )
        else:
            data["secret_name"] = ""
        return data
