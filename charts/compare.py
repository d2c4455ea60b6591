"""What the chart page shows beside the files: dependencies, the values schema, and the
difference between two versions' values.yaml.

All of it is made from what the database holds (Chart.yaml fields from the index, files
read in the background): nothing here fetches anything.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from itertools import zip_longest
from urllib.parse import urlsplit

from charts.models import Chart

# Past this many lines (both files together) a diff is not computed in a page view:
# difflib's matching grows faster than the input.
DIFF_MAX_LINES = 20_000
DIFF_CONTEXT = 3


# --- dependencies ---------------------------------------------------------------------


@dataclass(frozen=True)
class Dependency:
    """One entry of Chart.yaml's ``dependencies``, with the store's chart of that name."""

    name: str
    version: str  # a range, as written (">=1.2.0 <2", "~12.1")
    repository: str
    alias: str = ""
    condition: str = ""
    chart: Chart | None = None
    # Whether ``chart`` is from the repository the dependency names (else: same name only).
    from_repository: bool = False


def _same_location(a: str, b: str) -> bool:
    def norm(url: str) -> str:
        parts = urlsplit(url.strip())
        return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"

    return bool(a and b) and norm(a) == norm(b)


def _from(chart: Chart, repository: str) -> bool:
    """Whether ``chart`` is the one a dependency on ``repository`` pulls."""
    source = chart.source
    if source.is_oci:  # oci://host/prefix names the folder; the chart is a repository in it
        return _same_location(f"{repository.rstrip('/')}/{chart.name}", source.location)
    return _same_location(repository, source.helm.url)


def chart_dependencies(metadata: dict) -> list[Dependency]:
    """The dependencies listed in ``metadata`` (normalised Chart.yaml), each linked to a
    chart in the store of that name: the one from the repository it names when Wharf
    indexes that repository, else another of the same name (two queries at most)."""
    listed = [d for d in metadata.get("dependencies") or [] if d.get("name")]
    if not listed:
        return []
    names = {d["name"] for d in listed}
    candidates: dict[str, list[Chart]] = {}
    store = (
        Chart.objects.in_store()
        .filter(name__in=names)
        .select_related("source__registry", "source__helm_repository")
        .order_by("name", "source_id")
    )
    for chart in store:
        candidates.setdefault(chart.name, []).append(chart)
    result = []
    for entry in listed:
        repository = entry.get("repository", "")
        charts = candidates.get(entry["name"], [])
        exact = next((c for c in charts if repository and _from(c, repository)), None)
        result.append(
            Dependency(
                name=entry["name"],
                version=entry.get("version", ""),
                repository=repository,
                alias=entry.get("alias", ""),
                condition=entry.get("condition", ""),
                chart=exact or (charts[0] if charts else None),
                from_repository=exact is not None,
            )
        )
    return result


# --- values.schema.json ---------------------------------------------------------------


@dataclass(frozen=True)
class Schema:
    text: str  # pretty-printed when it is JSON, else as written
    valid: bool


def pretty_schema(text: str) -> Schema | None:
    """values.schema.json for reading: indented JSON, or the text as it is if it is not
    JSON (Helm would refuse such a chart; the page says so). None when there is none."""
    text = (text or "").removeprefix("\ufeff")
    if not text.strip():
        return None
    try:
        document = json.loads(text)
    except ValueError:  # JSONDecodeError, and numbers too long to parse
        return Schema(text, valid=False)
    return Schema(json.dumps(document, indent=2, ensure_ascii=False), valid=True)


# --- values.yaml between two versions -------------------------------------------------


@dataclass(frozen=True)
class Line:
    kind: str  # "context", "added", "removed", "hunk" (the start of a changed part)
    text: str
    old: int | None = None  # line number in the old file
    new: int | None = None  # line number in the new file


@dataclass(frozen=True)
class Pair:
    """One row of a side-by-side diff: the old file's line left, the new one's right."""

    left: Line | None
    right: Line | None
    hunk: str = ""


@dataclass(frozen=True)
class ValuesDiff:
    unified: list[Line]
    side_by_side: list[Pair]
    added: int
    removed: int
    too_large: bool = False

    @property
    def same(self) -> bool:
        return not self.too_large and not self.added and not self.removed


def _lines(text: str) -> list[str]:
    return (text or "").removeprefix("\ufeff").splitlines()


def values_diff(old_text: str, new_text: str, *, context: int = DIFF_CONTEXT) -> ValuesDiff:
    """The changes from ``old_text`` to ``new_text``, line by line, in both layouts."""
    old, new = _lines(old_text), _lines(new_text)
    if len(old) + len(new) > DIFF_MAX_LINES:
        return ValuesDiff([], [], 0, 0, too_large=True)
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    unified: list[Line] = []
    pairs: list[Pair] = []
    added = removed = 0
    for group in matcher.get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        hunk = f"@@ -{first[1] + 1},{last[2] - first[1]} +{first[3] + 1},{last[4] - first[3]} @@"
        unified.append(Line("hunk", hunk))
        pairs.append(Pair(None, None, hunk=hunk))
        for tag, i1, i2, j1, j2 in group:
            gone = [Line("removed", old[i], old=i + 1) for i in range(i1, i2)]
            came = [Line("added", new[j], new=j + 1) for j in range(j1, j2)]
            if tag == "equal":
                same = [Line("context", old[i], old=i + 1, new=j1 + k + 1) for k, i in
                        enumerate(range(i1, i2))]  # fmt: skip
                unified.extend(same)
                pairs.extend(Pair(line, line) for line in same)
                continue
            removed += len(gone)
            added += len(came)
            unified.extend(gone)
            unified.extend(came)
            pairs.extend(Pair(left, right) for left, right in zip_longest(gone, came))
    return ValuesDiff(unified, pairs, added=added, removed=removed)
