"""Template tags of the judging pages: the experiment dashboard and speeches with their quotes
marked. (Judging data on pages outside judging comes from judging.context_processors.)"""
import re

from django import template
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe

from .. import dashboard

register = template.Library()


@register.inclusion_tag("judging/_dashboard.html")
def experiment_dashboard(experiment):
    return {"experiment": experiment, "summary": dashboard.summary(experiment),
            "version": experiment.latest_version()}


_QUOTE = re.compile(r"&lt;quote\s*&gt;(.*?)&lt;/quote\s*&gt;", re.IGNORECASE | re.DOTALL)
_STATUS_WORDS = {"verified": "verified quote", "near": "near quote", "unverified": "not found in the passage"}


@register.filter
def speech_with_quotes(turn):
    """A speech's text with each <quote> marked by the status the server gave it (in order)."""
    statuses = iter(q.get("status", "unverified") for q in (turn.get("payload") or {}).get("quotes", []))

    def mark(match):
        status = next(statuses, "unverified")
        return (f'<q class="quote quote-{status}">{match.group(1)}</q> '
                f'<span class="quote-badge">({_STATUS_WORDS.get(status, status)})</span>')

    return mark_safe(_QUOTE.sub(mark, conditional_escape(turn.get("text") or "")))
