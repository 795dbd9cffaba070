"""Template helpers for image debates: the revealed pixels and rectangle claims of a role-filtered
state (debates.snapshots), for pages drawn without the room's script (the verdict form)."""

from django import template

from ..pixel.board import SIDE

register = template.Library()


@register.filter
def revealed_cells(state: dict) -> list[dict]:
    """[{pixel, row, column, value, seat}] for each revealed pixel the viewer's state holds, in order."""
    cells = []
    for turn in state.get("turns", []):
        reveal = (turn.get("payload") or {}).get("reveal")
        if reveal:
            cells.append(
                {
                    "pixel": reveal["pixel"],
                    "row": reveal["pixel"] // SIDE,
                    "column": reveal["pixel"] % SIDE,
                    "value": reveal["value"],
                    "seat": turn["seat"],
                }
            )
    return cells


@register.filter
def claimed_rectangles(state: dict) -> list[dict]:
    """[{top, left, width, height, seat}] for each rectangle drawn as a claim."""
    return [
        {"top": r[0], "left": r[1], "height": r[2] - r[0] + 1, "width": r[3] - r[1] + 1, "seat": turn["seat"]}
        for turn in state.get("turns", [])
        for r in (turn.get("payload") or {}).get("rectangles", [])
    ]
