"""Template tags every screen shares: ``{% badge obj %}`` shows a status as declared once."""

from django import template
from django.utils.html import format_html

from config.badges import NAMED, Badge, badge_of

register = template.Library()


@register.simple_tag
def badge(obj, field: str = "status", text: str = ""):
    """A status badge for ``obj.<field>`` (or a :class:`Badge` as is, or one of
    :data:`config.badges.NAMED` by its name), with its note if any.

    ``text`` replaces the label (a count, "3 in sync"), keeping the colour.
    """
    if isinstance(obj, str):
        return format_html(
            '<span class="badge text-bg-{}" data-badge="{}">{}</span>',
            NAMED[obj].colour,
            obj,
            text or NAMED[obj].label,
        )
    shown = obj if isinstance(obj, Badge) else badge_of(obj, field)
    html = format_html(
        '<span class="badge text-bg-{}" data-status="{}">{}</span>',
        shown.colour,
        getattr(obj, field, "") if not isinstance(obj, Badge) else "",
        text or shown.label,
    )
    if shown.note:
        html += format_html(
            ' <span class="small text-warning-emphasis status-note">{}</span>', shown.note
        )
    return html
