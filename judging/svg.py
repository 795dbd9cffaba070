"""Small server-rendered SVG charts for the analysis pages. Pure module (no Django).

Every function returns a complete <svg> element as a string, with a <title> and an aria-label so a
screen reader announces what the chart shows; the numbers themselves are printed beside each chart
on the page. Text is escaped here, so callers may pass any labels. Colours come from CSS variables
of the site stylesheet with fallbacks, so the charts follow the page's theme.
"""

import math
from html import escape

INK = "var(--text, #1c2430)"
MUTED = "var(--muted, #5a6475)"
GRID = "var(--border, #dbe0e7)"
SERIES = ("#2c56c9", "#b3531a", "#23704f", "#8a3ea8", "#a0266a", "#5a6475")


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(title)}" class="chart" style="max-width:{width}px">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _text(x, y, content, anchor="start", size=12, color=INK, extra="") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{color}"{extra}>'
        f"{escape(str(content))}</text>"
    )


def _line(x1, y1, x2, y2, color=GRID, width=1, dash=None) -> str:
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{color}" '
        f'stroke-width="{width}"{dashes}/>'
    )


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    step = (high - low) / count
    return [low + i * step for i in range(count + 1)]


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def interval_chart(
    rows, title: str, axis_label: str, low: float = 0.0, high: float = 1.0, reference=None, as_percent: bool = True
) -> str:
    """One row per group: a dot at the estimate and a whisker over its interval.

    rows: dicts with label, estimate, low, high (interval ends may be None) and optionally
    second_low/second_high for a second interval drawn thinner (e.g. Wilson and bootstrap).
    reference: an x value marked with a dashed line (chance, or zero for a difference)."""
    rows = list(rows)
    label_width, width, row_height = 190, 620, 30
    plot_left, plot_right = label_width, width - 20
    height = 50 + row_height * max(1, len(rows))

    def x_of(value):
        value = min(max(value, low), high)
        return plot_left + (value - low) / (high - low) * (plot_right - plot_left)

    body = []
    for tick in _ticks(low, high):
        x = x_of(tick)
        body.append(_line(x, 10, x, height - 30))
        body.append(_text(x, height - 16, _percent(tick) if as_percent else f"{tick:g}", "middle", 11, MUTED))
    if reference is not None and low <= reference <= high:
        body.append(_line(x_of(reference), 10, x_of(reference), height - 30, MUTED, 1, "4 3"))
    body.append(_text((plot_left + plot_right) / 2, height - 2, axis_label, "middle", 11, MUTED))
    if not rows:
        body.append(_text((plot_left + plot_right) / 2, 34, "no data yet", "middle", 12, MUTED))
    for i, row in enumerate(rows):
        y = 28 + i * row_height
        colour = SERIES[i % len(SERIES)]
        body.append(_text(label_width - 10, y + 4, row["label"], "end", 12))
        if row.get("second_low") is not None:
            body.append(_line(x_of(row["second_low"]), y + 7, x_of(row["second_high"]), y + 7, colour, 1.5, "3 2"))
        if row.get("low") is not None:
            body.append(_line(x_of(row["low"]), y, x_of(row["high"]), y, colour, 3))
        if row.get("estimate") is not None and math.isfinite(row["estimate"]):
            body.append(f'<circle cx="{x_of(row["estimate"]):.1f}" cy="{y}" r="5" fill="{colour}"/>')
    return _svg(width, height, title, body)


def line_chart(
    series, title: str, x_label: str, y_label: str, low: float = 0.0, high: float = 1.0, reference=None
) -> str:
    """series: [(name, [(x, y, y_low, y_high), ...])] with whole-number x (rounds). Intervals may be None."""
    series = [(name, list(points)) for name, points in series]
    width, height = 620, 300
    left, right, top, bottom = 56, width - 150, 16, height - 44
    xs = [p[0] for _, points in series for p in points] or [0, 1]
    x_min, x_max = min(xs), max(max(xs), min(xs) + 1)

    def x_of(x):
        return left + (x - x_min) / (x_max - x_min) * (right - left)

    def y_of(y):
        y = min(max(y, low), high)
        return bottom - (y - low) / (high - low) * (bottom - top)

    body = []
    for tick in _ticks(low, high, 4):
        body.append(_line(left, y_of(tick), right, y_of(tick)))
        body.append(_text(left - 6, y_of(tick) + 4, _percent(tick), "end", 11, MUTED))
    for x in range(int(x_min), int(x_max) + 1):
        body.append(_text(x_of(x), bottom + 16, str(x), "middle", 11, MUTED))
    if reference is not None:
        body.append(_line(left, y_of(reference), right, y_of(reference), MUTED, 1, "4 3"))
    body.append(_text((left + right) / 2, height - 6, x_label, "middle", 11, MUTED))
    body.append(
        _text(
            14,
            (top + bottom) / 2,
            y_label,
            "middle",
            11,
            MUTED,
            f' transform="rotate(-90 14 {(top + bottom) / 2:.1f})"',
        )
    )
    if not series:
        body.append(_text((left + right) / 2, (top + bottom) / 2, "no data yet", "middle", 12, MUTED))
    for i, (name, points) in enumerate(series):
        colour = SERIES[i % len(SERIES)]
        band = [(x, lo, hi) for x, _, lo, hi in points if lo is not None]
        if len(band) > 1:
            outline = [f"{x_of(x):.1f},{y_of(hi):.1f}" for x, _, hi in band]
            outline += [f"{x_of(x):.1f},{y_of(lo):.1f}" for x, lo, _ in reversed(band)]
            body.append(f'<polygon points="{" ".join(outline)}" fill="{colour}" fill-opacity="0.12"/>')
        path = " ".join(f"{x_of(x):.1f},{y_of(y):.1f}" for x, y, _, _ in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y, _, _ in points:
            body.append(f'<circle cx="{x_of(x):.1f}" cy="{y_of(y):.1f}" r="3.5" fill="{colour}"/>')
        body.append(f'<rect x="{right + 14}" y="{top + 18 * i}" width="12" height="12" fill="{colour}"/>')
        body.append(_text(right + 32, top + 18 * i + 10, name, "start", 12))
    return _svg(width, height, title, body)


def reliability_chart(bins, title: str) -> str:
    """bins: dicts with low, high, count, mean_confidence, accuracy (None for an empty bin). The
    diagonal is perfect calibration; the bar under each point shows how many judgments it holds."""
    bins = list(bins)
    size, margin = 320, 46
    plot = size - margin - 14
    most = max([b["count"] for b in bins] + [1])

    def x_of(v):
        return margin + (v - 0.5) / 0.5 * plot

    def y_of(v):
        return 14 + plot - v * plot

    body = []
    for tick in (0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
        body.append(_line(x_of(tick), 14, x_of(tick), 14 + plot))
        body.append(_text(x_of(tick), 14 + plot + 14, _percent(tick), "middle", 10, MUTED))
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        body.append(_line(margin, y_of(tick), margin + plot, y_of(tick)))
        body.append(_text(margin - 5, y_of(tick) + 3, _percent(tick), "end", 10, MUTED))
    body.append(_line(x_of(0.5), y_of(0.5), x_of(1.0), y_of(1.0), MUTED, 1, "4 3"))
    for b in bins:
        if not b["count"]:
            continue
        bar_height = 0.25 * plot * b["count"] / most
        body.append(
            f'<rect x="{x_of(b["low"]) + 1:.1f}" y="{14 + plot - bar_height:.1f}" '
            f'width="{x_of(b["high"]) - x_of(b["low"]) - 2:.1f}" height="{bar_height:.1f}" '
            f'fill="{SERIES[5]}" fill-opacity="0.18"/>'
        )
    points = [b for b in bins if b["count"]]
    if points:
        path = " ".join(f"{x_of(b['mean_confidence']):.1f},{y_of(b['accuracy']):.1f}" for b in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{SERIES[0]}" stroke-width="2"/>')
        for b in points:
            body.append(
                f'<circle cx="{x_of(b["mean_confidence"]):.1f}" cy="{y_of(b["accuracy"]):.1f}" r="4" '
                f'fill="{SERIES[0]}"/>'
            )
    else:
        body.append(_text(margin + plot / 2, 14 + plot / 2, "no data yet", "middle", 12, MUTED))
    body.append(_text(margin + plot / 2, size + 4, "confidence in the chosen answer", "middle", 11, MUTED))
    body.append(
        _text(12, 14 + plot / 2, "accuracy", "middle", 11, MUTED, f' transform="rotate(-90 12 {14 + plot / 2:.1f})"')
    )
    return _svg(size, size + 10, title, body)


def heatmap(matrix, row_labels, column_labels, title: str, row_axis: str, column_axis: str) -> str:
    """A grid of shares in [0, 1] (None for cells with no data), darker for larger values, each
    cell printed as a percentage."""
    cell, left, top = 30, 56, 40
    rows, columns = len(row_labels), len(column_labels)
    width, height = left + cell * columns + 10, top + cell * rows + 10
    body = [
        _text(left + cell * columns / 2, 12, column_axis, "middle", 11, MUTED),
        _text(
            12,
            top + cell * rows / 2,
            row_axis,
            "middle",
            11,
            MUTED,
            f' transform="rotate(-90 12 {top + cell * rows / 2:.1f})"',
        ),
    ]
    for j, label in enumerate(column_labels):
        body.append(_text(left + cell * j + cell / 2, top - 8, label, "middle", 11))
    for i, label in enumerate(row_labels):
        body.append(_text(left - 8, top + cell * i + cell / 2 + 4, label, "end", 11))
        for j in range(columns):
            value = matrix[i][j]
            x, y = left + cell * j, top + cell * i
            if value is None or (isinstance(value, float) and math.isnan(value)):
                body.append(
                    f'<rect x="{x}" y="{y}" width="{cell - 1}" height="{cell - 1}" fill="{GRID}" fill-opacity="0.4"/>'
                )
                continue
            body.append(
                f'<rect x="{x}" y="{y}" width="{cell - 1}" height="{cell - 1}" fill="{SERIES[1]}" '
                f'fill-opacity="{0.08 + 0.92 * value:.2f}"/>'
            )
            body.append(
                _text(
                    x + cell / 2, y + cell / 2 + 4, f"{100 * value:.0f}", "middle", 10, "#fff" if value > 0.55 else INK
                )
            )
    return _svg(width, height, title, body)
