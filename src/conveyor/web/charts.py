"""The two charts of the automation page as inline SVG, built here rather than in a template.

A chart is some hundred rectangles; writing them with f-strings costs a
fraction of rendering each attribute through the template engine's escaping
(docs/ui.md, bench/ui_render.py). Only the labels are text from outside the
code, and they are escaped.
"""

from __future__ import annotations

from html import escape

from markupsafe import Markup

from conveyor.web.presentation import Bar, DailyChart, DurationChart


def _bars(bars: list[Bar]) -> str:
    return "".join(
        f'<rect class="bar bar-{bar.status}" x="{bar.x:g}" y="{bar.y:g}" '
        f'width="{bar.width:g}" height="{bar.height:g}"><title>{escape(bar.label)}</title></rect>'
        for bar in bars
    )


def daily_svg(chart: DailyChart) -> Markup:
    title = f"{chart.total} runs in the last 30 days; busiest day {chart.max_total} runs"
    labels = "".join(
        f'<text class="axis-label" x="{label.x:g}" y="{chart.height + 16}" '
        f'text-anchor="middle">{escape(label.text)}</text>'
        for label in chart.labels
    )
    return Markup(
        f'<svg viewBox="0 -12 {chart.width} {chart.height + 32}" width="100%" role="img" '
        f'aria-labelledby="daily-title"><title id="daily-title">{escape(title)}</title>'
        f'<line class="axis" x1="0" y1="{chart.height}" x2="{chart.width}" y2="{chart.height}"/>'
        f'<text class="axis-label" x="0" y="-2">{chart.max_total}</text>'
        f"{_bars(chart.bars)}{labels}</svg>"
    )


def durations_svg(chart: DurationChart) -> Markup:
    title = f"Run durations, oldest on the left; longest {chart.longest}"
    return Markup(
        f'<svg viewBox="0 -12 {chart.width} {chart.height + 14}" width="100%" role="img" '
        f'aria-labelledby="durations-title"><title id="durations-title">{escape(title)}</title>'
        f'<line class="axis" x1="0" y1="{chart.height}" x2="{chart.width}" y2="{chart.height}"/>'
        f'<text class="axis-label" x="0" y="-2">{escape(chart.longest)}</text>'
        f"{_bars(chart.bars)}</svg>"
    )
