""" "Test pull" on a status row (one target) and on a cluster (all of its targets).

POST only (a GET is 405): each queues a pull test run (clusters/pulltest.py) and sends the
user back to the page the button was on, where the status table shows the result.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views import View

from clusters import pulltest
from clusters.models import Cluster, PullSecretTarget
from clusters.views import cluster_page
from config import roles
from config.views import OperatorRequiredMixin


def _back(request, target: PullSecretTarget | None, cluster: Cluster) -> HttpResponseRedirect:
    """The page the button was on: a registry's Manage page or the cluster's page (for an
    operator, the clusters list)."""
    if not roles.allows(request.user, roles.ADMIN):
        return HttpResponseRedirect(cluster_page(request, cluster))
    if target is not None and request.POST.get("back") == "registry":
        url = reverse("clusters:registryaccess_edit", args=[target.registry_id])
    else:
        url = reverse("clusters:cluster_edit", args=[cluster.pk])
    return HttpResponseRedirect(url + "#pull-secrets")


class TargetPullTestView(OperatorRequiredMixin, View):
    """Remember the image typed on the row for its registry, then test that target."""

    http_method_names = ["post"]

    def post(self, request, pk):
        target = get_object_or_404(PullSecretTarget.objects.select_related("registry"), pk=pk)
        cluster = target.cluster
        image = request.POST.get("image", "")
        try:
            with transaction.atomic():
                pulltest.remember_image(target.registry, image, request.user)
                pulltest.request_pull_test(cluster, target)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return _back(request, target, cluster)
        messages.info(
            request,
            f"Testing a pull of {image.strip()} in {cluster}/{target.namespace} with only "
            f"{target.secret_name}.",
        )
        return _back(request, target, cluster)


class ClusterPullTestView(OperatorRequiredMixin, View):
    """Test every target of the cluster, each with its registry's remembered image."""

    http_method_names = ["post"]

    def post(self, request, pk):
        cluster = get_object_or_404(Cluster, pk=pk)
        if not cluster.targets.exists():
            messages.error(request, f"{cluster} has no pull secret targets to test yet.")
            return _back(request, None, cluster)
        with transaction.atomic():
            pulltest.request_pull_test(cluster)
        messages.info(request, f"Testing pulls in every namespace of {cluster} Wharf serves.")
        return _back(request, None, cluster)
