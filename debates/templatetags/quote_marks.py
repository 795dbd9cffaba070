"""A speech on a page with its quotes marked by the status the server stored, in words as well as
colour: the one rendering of debates.quotes.speech_segments for every page drawn on the server.
The room's client renders the same pieces the same way (speechNodes in static/js/debate-state.js);
tests/test_quote_rendering.py runs both on the same speeches and compares the results."""

from django import template
from django.utils.html import format_html, format_html_join

from .. import quotes

register = template.Library()


@register.simple_tag
def speech_text(turn: dict):
    """A turn's text (a dict of a role-filtered state), the i-th quote marked by the i-th stored status."""
    pieces = quotes.speech_segments(turn.get("text") or "", (turn.get("payload") or {}).get("quotes"))
    return format_html_join("", "{}", ((marked_piece(piece),) for piece in pieces))


def marked_piece(piece: dict):
    """The speaker's own words as text; a quote as <span class="quote quote-STATUS"><q>…</q> badge</span>."""
    if "quote" not in piece:
        return piece["text"]
    return format_html(
        '<span class="quote quote-{}"><q>{}</q> <span class="quote-badge">{}</span></span>',
        piece["status"],
        piece["quote"],
        quotes.quote_badge(piece["status"]),
    )
