"""Filters for a chart version's files on the chart page."""

from django import template
from django.utils.safestring import SafeString, mark_safe

from charts import compare
from charts.readme import render_readme

register = template.Library()


@register.filter
def readme_html(text: str) -> SafeString:
    """The README rendered from Markdown and sanitised (charts/readme.py)."""
    return mark_safe(render_readme(text or ""))  # noqa: S308 - nh3's allow-list output


@register.filter
def pretty_schema(text: str):
    """values.schema.json indented for reading (charts/compare.py); None if there is none."""
    return compare.pretty_schema(text)
