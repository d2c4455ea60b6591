"""Status badges, declared once: each status choice's label and Bootstrap colour.

A model's status field is declared here beside its choices (``declare(Run, "status", …)``
in config/runs.py, the pull-secret target's in clusters/models.py), and every template
shows it with ``{% badge obj %}`` (config/templatetags/wharf.py): no page spells out a
colour per status. A model may rename a choice for its kind of work (a running push is
"Pushing"); a declaration on an abstract model (``Run``) serves every model built on it,
and a subclass's own declaration wins. A running run that lost its heartbeat (``stale``)
is shown as such, whatever its kind (NetBox's ``ChoiceSet`` colours, much smaller).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils import timezone

# Bootstrap's contextual colours (``text-bg-<colour>``).
COLOURS = ("primary", "secondary", "success", "danger", "warning", "info", "light", "dark")


@dataclass(frozen=True)
class Badge:
    label: str
    colour: str
    # A few words beside the badge, e.g. why a running run looks stuck.
    note: str = ""


_declared: dict[tuple[type[models.Model], str], dict[str, Badge]] = {}

# Badges that mark a thing rather than show a status: ``{% badge "prerelease" %}``.
NAMED: dict[str, Badge] = {
    "prerelease": Badge("pre-release", "warning"),
    # A pull secret carrying the previous credential beside the new one (clusters).
    "rotating": Badge("rotating", "info"),
    # A pull secret whose credential runs out before Wharf would renew it (clusters).
    "expiring": Badge("expires soon", "warning"),
}


def declare(
    model: type[models.Model],
    field: str,
    colours: Mapping[str, str],
    *,
    labels: Mapping[str, str] | None = None,
) -> None:
    """Give each choice of ``model.field`` its colour (and, optionally, its own label).

    Every choice needs a colour: a status added later without one stops start-up here,
    rather than showing an unstyled badge.
    """
    choices = dict(getattr(model._meta.get_field(field), "flatchoices", ()))
    # What a model it extends declared (Run for every kind of run), never its own earlier one.
    inherited = next(
        (_declared[(k, field)] for k in model.__mro__[1:] if (k, field) in _declared), {}
    )
    badges: dict[str, Badge] = {}
    for value, label in choices.items():
        colour = colours.get(value) or (inherited[value].colour if value in inherited else "")
        if colour not in COLOURS:
            raise ImproperlyConfigured(
                f"The badge of {model.__name__}.{field} = {value!r} needs one of {COLOURS}."
            )
        badges[value] = Badge((labels or {}).get(value, str(label)), colour)
    _declared[(model, field)] = badges


def _inherited(model: type[models.Model], field: str) -> dict[str, Badge]:
    for klass in model.__mro__:
        badges = _declared.get((klass, field))
        if badges is not None:
            return badges
    return {}


def badge_of(obj: models.Model, field: str = "status") -> Badge:
    """The badge of ``obj``'s ``field`` as declared for its model (or a model it extends)."""
    value = getattr(obj, field)
    badge = _inherited(type(obj), field).get(value)
    if badge is None:
        # Undeclared (a status from a later version, a model nobody declared): still legible.
        display = getattr(obj, f"get_{field}_display", lambda: value)
        badge = Badge(str(display()), "light")
    if field == "status" and getattr(obj, "stale", False):
        return Badge("No heartbeat", "warning", note=stale_note(obj))
    return badge


def stale_note(run: models.Model) -> str:
    last: datetime | None = getattr(run, "last_heartbeat", None)
    since = timezone.localtime(last).strftime("%H:%M:%S") if last else "its start"
    return (
        f"No heartbeat since {since}: its worker seems gone. Wharf marks it failed within "
        "a minute and runs what waits."
    )
