"""Filters for a chart version's files on the chart page."""

from functools import lru_cache

from django import template
from django.utils.safestring import SafeString, mark_safe

from charts import compare
from charts.readme import render_readme

register = template.Library()


@register.filter
def readme_html(text: str) -> SafeString:
    """The README rendered from Markdown and sanitised (charts/readme.py)."""
    return mark_safe(_rendered(text or ""))  # noqa: S308 - nh3's allow-list output


# A README may be 2 MiB (a second or more to render): the few last ones are kept, so a
# chart page polled or reloaded does not render its README again (a few MiB at most).
@lru_cache(maxsize=8)
def _rendered(text: str) -> str:
    return render_readme(text)


@register.filter
def pretty_schema(text: str):
    """values.schema.json indented for reading (charts/compare.py); None if there is none."""
    return compare.pretty_schema(text)
