"""Template tags of the judging pages: the experiment dashboard. (Speeches with their quotes marked
come from debates' quote_marks; judging data on pages outside judging from
judging.context_processors.)"""

from django import template

from .. import dashboard

register = template.Library()


@register.inclusion_tag("judging/_dashboard.html")
def experiment_dashboard(experiment):
    return {"experiment": experiment, "summary": dashboard.summary(experiment), "version": experiment.latest_version()}
