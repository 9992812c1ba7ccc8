"""Charts as SVG drawn on the server: readable without JavaScript, styled by attributes
only (the pages' CSP allows no inline style), each with its values as a table for those
who do not see it (the page renders `Chart.rows` beside the drawing).

Pure functions of plain data: no Flask, no database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 16, 28
COLOURS = ("#1f5fbf", "#9aa4b2")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[Decimal | None]  # None: no value (a day not reached yet)


@dataclass(frozen=True)
class Chart:
    """Values by position (day 1, 2… or months), one series drawn as bars or lines each."""

    title: str
    labels: Sequence[str]
    series: Sequence[Series]
    kind: str = "bars"  # or "lines"
    label_heading: str = ""  # what the labels are (the table's first column): "Day"…

    @property
    def rows(self) -> list[tuple[str, list[Decimal | None]]]:
        """The table of values: one row per label, one column per series."""
        return [
            (label, [s.values[i] if i < len(s.values) else None for s in self.series])
            for i, label in enumerate(self.labels)
        ]


def render_svg(chart: Chart, chart_id: str, axis_format: Callable[[Decimal], str]) -> str:
    """The chart as an <svg> element, titled for assistive technology."""
    values = [v for s in chart.series for v in s.values if v is not None]
    top = _nice_ceiling(max(values, default=Decimal(0)))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    count = max(len(chart.labels), 1)
    step = plot_w / count

    def y(value: Decimal) -> float:
        return TOP + plot_h - (float(value) / float(top)) * plot_h if top else TOP + plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title" id="{chart_id}">',
        f'<title id="{chart_id}-title">{escape(chart.title)}</title>',
    ]
    for fraction in (0, 0.5, 1):
        tick = top * Decimal(str(fraction))
        ty = y(tick)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}" '
            f'stroke="#d9dde3" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#5b6472">{escape(axis_format(tick))}</text>'
        )
    label_every = max(1, count // 10)
    for i, label in enumerate(chart.labels):
        if i % label_every == 0:
            x = LEFT + step * (i + 0.5)
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle" font-size="11" '
                f'fill="#5b6472">{escape(label)}</text>'
            )
    if chart.kind == "bars":
        parts += _bars(chart, step, y)
    else:
        parts += _lines(chart, step, y)
    parts.append("</svg>")
    return "".join(parts)


def _bars(chart: Chart, step: float, y: Callable[[Decimal], float]) -> list[str]:
    width = step * 0.8 / max(len(chart.series), 1)
    bars = []
    for index, series in enumerate(chart.series):
        colour = COLOURS[index % len(COLOURS)]
        for i, value in enumerate(series.values):
            if value is None:
                continue
            x = LEFT + step * i + step * 0.1 + width * index
            top = y(value)
            bars.append(
                f'<rect x="{x:.1f}" y="{top:.1f}" width="{width:.1f}" '
                f'height="{max(y(Decimal(0)) - top, 0):.1f}" fill="{colour}">'
                f"<title>{escape(series.name)} {escape(chart.labels[i])}</title></rect>"
            )
    return bars


def _lines(chart: Chart, step: float, y: Callable[[Decimal], float]) -> list[str]:
    lines = []
    for index, series in enumerate(chart.series):
        colour = COLOURS[index % len(COLOURS)]
        points = [
            f"{LEFT + step * (i + 0.5):.1f},{y(value):.1f}"
            for i, value in enumerate(series.values)
            if value is not None
        ]
        if points:
            lines.append(
                f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
                f'stroke-width="2.5"><title>{escape(series.name)}</title></polyline>'
            )
    return lines


def _nice_ceiling(value: Decimal) -> Decimal:
    """The axis top: 1, 2 or 5 times a power of ten, at or above `value` (1 for nothing)."""
    if value <= 0:
        return Decimal(1)
    magnitude = Decimal(10) ** (value.adjusted())
    for factor in (1, 2, 5, 10):
        if value <= magnitude * factor:
            return magnitude * factor
    return magnitude * 10
