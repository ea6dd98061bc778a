"""How the KPI page shows figures: numbers as text, and each KPI's chart as inline SVG drawn by matplotlib.

A chart is horizontal bars, one per group, with the KPI's target as a dashed line. Text stays
text in the SVG (svg.fonttype "none") and the <svg> carries a title naming every bar, so a
screen reader reads the chart; the table under it holds the same figures. The pages' Content-Security-Policy
applies no <style> element or style attribute, so matplotlib's styles become SVG presentation attributes.
"""
from __future__ import annotations

import io
import re
import threading

from markupsafe import Markup, escape

from workflows.kpis import Figure, Kpi

from . import bp

BAR, TARGET = "#1f5fbf", "#b3261e"
# rcParams are process-wide: charts are drawn one at a time, under these settings only.
_DRAWING = threading.Lock()
_STYLE = {"svg.fonttype": "none", "svg.hashsalt": "casework-kpi", "text.parse_math": False, "font.size": 9,
          "font.family": "sans-serif", "axes.edgecolor": "#5b6575", "axes.labelcolor": "#1d2430"}
_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.S)
_SIZE = re.compile(r'\s(?:width|height)="[^"]*"')
_STYLE_ELEMENT = re.compile(r"<style\b.*?</style>", re.S)
_STYLE_ATTRIBUTE = re.compile(r'\sstyle="([^"]*)"')
# What matplotlib's <style> element sets on every element; on the <svg> its children inherit it instead.
_SVG_DEFAULTS = 'stroke-linejoin="round" stroke-linecap="butt"'


def number(value: float | None, *, unit: str, measure: str = "") -> str:
    """A figure's value as the page writes it: "75.0%", "1.50", "6.0" (a mean), "7" (a count)."""
    if value is None:
        return "—"
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "index":
        return f"{value:.2f}"
    if value == int(value) and not measure.startswith(("Mean", "Median")):
        return f"{value:.0f}"
    return f"{value:.1f}"


@bp.app_template_global()
def kpi_cell(figure: Figure | None) -> str:
    """A table cell: the value, and for a share, how many of how many."""
    if figure is None:
        return ""
    text = number(figure.value, unit=figure.unit, measure=figure.measure)
    if figure.unit == "%" and figure.denominator:
        text += f" ({figure.numerator:g} of {figure.denominator:g})"
    return text


@bp.app_template_global()
def kpi_chart(kpi: Kpi) -> Markup:
    """The KPI's chart as inline SVG, named for screen readers by its title and every bar's figure."""
    bars = kpi.charted()
    unit = bars[0].unit if bars else ""
    name = f"{kpi.title}, {kpi.chart}: " + "; ".join(
        f"{bar.group} {number(bar.value, unit=unit, measure=bar.measure)}" for bar in bars)
    return Markup(_accessible(_draw(kpi, bars, unit), name))


def _draw(kpi: Kpi, bars: list[Figure], unit: str) -> str:
    """Horizontal bars, one per group, each labelled with its value; the target as a dashed line."""
    # matplotlib (with numpy) takes most of a second to import: only the KPI page pays for it.
    import matplotlib
    from matplotlib.figure import Figure as Drawing
    from matplotlib.ticker import MaxNLocator

    values = [bar.value for bar in bars]
    with _DRAWING, matplotlib.rc_context(_STYLE):
        drawing = Drawing(figsize=(7.5, 0.75 + 0.3 * len(bars) + (0.25 if kpi.target is not None else 0)),
                          layout="constrained")
        axes = drawing.add_subplot()
        axes.barh(range(len(bars)), values, color=BAR, height=0.6)
        axes.set_yticks(range(len(bars)), labels=[bar.group for bar in bars])
        axes.invert_yaxis()
        axes.set_xlabel(kpi.chart if unit == "index" or unit in kpi.chart.lower() else f"{kpi.chart} ({unit})")
        for position, bar in enumerate(bars):
            axes.annotate(number(bar.value, unit=unit, measure=bar.measure), (bar.value, position),
                          xytext=(3, 0), textcoords="offset points", va="center")
        axes.set_xlim(0, 112 if unit == "%" else (max(values + [kpi.target or 0]) or 1) * 1.15)
        if unit not in ("%", "index") and all(value == int(value) for value in values):
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if kpi.target is not None:
            axes.axvline(kpi.target, color=TARGET, linestyle="--", linewidth=1.2,
                         label=f"Target {number(kpi.target, unit=unit)}")
            axes.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False, borderaxespad=0)
        axes.spines[["top", "right"]].set_visible(False)
        svg = io.StringIO()
        drawing.savefig(svg, format="svg", metadata={"Date": None})
    return svg.getvalue()


def _accessible(svg: str, name: str) -> str:
    """The SVG without its XML prolog, scaling to its box, with a role and a name for assistive technology."""
    svg = _STYLE_ATTRIBUTE.sub(_presentation_attributes, _STYLE_ELEMENT.sub("", _PROLOG.sub("", svg, count=1)))
    opening, rest = svg.split(">", 1)
    return (f'{_SIZE.sub("", opening)} {_SVG_DEFAULTS} role="img" aria-label="{escape(name)}">'
            f'<title>{escape(name)}</title>' + rest)


def _presentation_attributes(style: re.Match) -> str:
    """matplotlib's style="fill: #fff; stroke-width: 0.8" as fill="#fff" stroke-width="0.8" (all SVG properties)."""
    declarations = (part.split(":", 1) for part in style.group(1).split(";") if ":" in part)
    return "".join(f' {name.strip()}="{value.strip()}"' for name, value in declarations)
