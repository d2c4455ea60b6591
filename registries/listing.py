"""Which repositories a registry holds: one function, whatever the provider.

- the distribution API, ``GET /v2/_catalog`` page by page (CNCF distribution, Zot, ACR
  with a ``*`` scope-map token, Harbor with system-level rights, Quay where it lists);
- ECR through the AWS API (``DescribeRepositories``, ``DescribeImages``): tags and the
  artifact media type of each image come with it, no registry request needed;
- Docker Hub and GCP Artifact Registry list nothing to anyone: a refusal, at once.

A refusal (credentials without the catalog right, a registry without a catalog, an empty
catalog) is an answer, :attr:`Listing.refusal`; a failure to reach the registry raises
:class:`~registries.oci.RegistryError`. Either way, no listing is ever returned in part.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from registries import oci
from registries.models import REPOSITORY_PATH, Registry
from registries.providers import LISTING_REFUSED, EcrProvider, split_url

METHOD_CATALOG = "catalog"
METHOD_ECR = "ecr"
# The distribution spec's name grammar, and the length registries and Wharf's columns keep.
MAX_REPOSITORY_NAME = 255
INVALID_NAME = (
    "not a valid repository name (the distribution spec's grammar, at most 255 characters)"
)
METHOD_LABELS = {
    METHOD_CATALOG: "the distribution API (GET /v2/_catalog)",
    METHOD_ECR: "the ECR API (DescribeRepositories and DescribeImages)",
}


@dataclass(frozen=True)
class ListedRepository:
    """A repository, named as Wharf's sources name it: under the registry URL's path."""

    name: str
    # What the listing told beside the name (ECR): every tag, and the artifact media type
    # of each tag's image ("" where the listing does not give it). None: not told.
    tags: tuple[str, ...] | None = None
    media_types: dict[str, str] | None = None


@dataclass
class Listing:
    method: str  # METHOD_CATALOG or METHOD_ECR, or "" when none applies
    repositories: list[ListedRepository] = field(default_factory=list)
    refusal: str = ""  # why the registry does not list its repositories
    seen: int = 0  # repositories the registry listed, before the path and prefixes
    # Names the registry listed that no repository can have ("../x", "Upper", 300
    # characters…): shown, shortened, as skipped; never asked for nor stored as sources.
    invalid: list[str] = field(default_factory=list)

    @property
    def listed(self) -> bool:
        return not self.refusal

    @property
    def method_label(self) -> str:
        return METHOD_LABELS.get(self.method, "")


def valid_name(name: object) -> bool:
    """Whether ``name`` (as a registry listed it) can be an OCI repository's name."""
    return (
        isinstance(name, str)
        and len(name) <= MAX_REPOSITORY_NAME
        and REPOSITORY_PATH.match(name) is not None
    )


def shown_name(name: str) -> str:
    """A listed name, short enough to show and to keep."""
    return name if len(name) <= 80 else name[:79] + "…"


def wanted_name(name: str, base: str, prefixes: list[str]) -> str | None:
    """``name`` (an API repository path) under the URL path ``base`` and one of
    ``prefixes`` (all when empty): relative to ``base``; else None."""
    base = base.strip("/")
    if base:
        if not name.startswith(base + "/"):
            return None
        name = name[len(base) + 1 :]
    if prefixes and not any(name == p or name.startswith(p + "/") for p in prefixes):
        return None
    return name


def list_repositories(
    registry: Registry, *, client: oci.RegistryClient | None = None, describe: bool = True
) -> Listing:
    """The repositories ``registry`` holds under its URL path and path prefixes.

    ``client``: a session to the registry to list with (one is opened otherwise).
    ``describe``: for ECR, also read each wanted repository's images (tags, media
    types); Test connection wants only the names.
    """
    provider = registry.provider_spec
    if not provider.lists_repositories:
        return Listing("", refusal=provider.listing_refusal())
    base = split_url(registry.url)[1]
    prefixes = list(registry.repository_prefixes or [])
    if isinstance(provider, EcrProvider) and not registry.is_public:
        return _list_ecr(registry, base, prefixes, describe=describe)
    return _list_catalog(registry, base, prefixes, client)


def _list_catalog(
    registry: Registry, base: str, prefixes: list[str], client: oci.RegistryClient | None
) -> Listing:
    own = client is None
    if client is None:
        client = oci.RegistryClient(registry.connection())
    try:
        names = client.list_catalog(
            page_size=settings.WHARF_OCI_CATALOG_PAGE_SIZE,
            deadline=settings.WHARF_OCI_CATALOG_DEADLINE,
        )
    except oci.RegistryError as exc:
        if exc.kind in (exc.AUTH, exc.NOT_FOUND) and not exc.cause:
            # Refused or not offered (a proxy's own refusal has a cause: that one is news).
            return Listing(METHOD_CATALOG, refusal=f"{LISTING_REFUSED} ({exc})")
        raise
    finally:
        if own:
            client.close()
    if not names:
        return Listing(METHOD_CATALOG, refusal=f"{LISTING_REFUSED} (its catalog is empty)")
    repositories = []
    invalid = []
    for name in names:
        if not valid_name(name):
            invalid.append(shown_name(name))
            continue
        relative = wanted_name(name, base, prefixes)
        if relative:
            repositories.append(ListedRepository(relative))
    return Listing(METHOD_CATALOG, repositories, seen=len(names), invalid=invalid)


def _list_ecr(registry: Registry, base: str, prefixes: list[str], *, describe: bool) -> Listing:
    from registries.aws import AwsError, ecr_repositories

    names_seen: list[str] = []

    def wanted(name: str) -> bool:
        names_seen.append(name)
        return describe and valid_name(name) and wanted_name(name, base, prefixes) is not None

    try:
        found = ecr_repositories(
            registry_id=registry.ecr_account,
            wanted=wanted,
            seconds=settings.WHARF_OCI_CATALOG_DEADLINE,
            **registry.aws_access(),
        )
    except AwsError as exc:
        if exc.unreachable:
            raise oci.RegistryError(
                f"AWS could not be asked for the repositories: {exc}",
                kind=oci.RegistryError.UNREACHABLE,
                host=split_url(registry.url)[0],
            ) from None
        return Listing(METHOD_ECR, refusal=f"{LISTING_REFUSED} ({exc})")
    if not names_seen:
        return Listing(METHOD_ECR, refusal=f"{LISTING_REFUSED} (ECR lists no repositories)")
    if not describe:
        listed = [wanted_name(n, base, prefixes) for n in names_seen if valid_name(n)]
        return Listing(METHOD_ECR, [ListedRepository(n) for n in listed if n], seen=len(names_seen))
    invalid = [shown_name(str(n)) for n in names_seen if not valid_name(n)]
    repositories = []
    for repository in found:
        if not valid_name(repository.name):
            continue
        relative = wanted_name(repository.name, base, prefixes)
        if not relative:
            continue
        media_types = {
            tag: image.artifact_media_type for image in repository.images for tag in image.tags
        }
        repositories.append(ListedRepository(relative, tuple(media_types), media_types))
    return Listing(METHOD_ECR, repositories, seen=len(names_seen), invalid=invalid)
