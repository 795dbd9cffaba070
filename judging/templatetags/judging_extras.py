"""Template tags that let pages outside the judging app show judging data (debates never imports
judging): the lobby's offline judging list and the experiment dashboard."""
from django import template

from .. import dashboard
from ..models import Assignment

register = template.Library()


@register.simple_tag
def offline_assignments(user):
    """The user's offline judging assignments that are not done yet, oldest first."""
    if not user.is_authenticated:
        return []
    return list(Assignment.objects.filter(judge=user).exclude(status=Assignment.DONE)
                .select_related("debate__question").order_by("id"))


@register.inclusion_tag("judging/_dashboard.html")
def experiment_dashboard(experiment):
    return {"experiment": experiment, "summary": dashboard.summary(experiment),
            "version": experiment.latest_version()}
