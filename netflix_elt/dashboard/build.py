"""Build the dashboard: one self-contained HTML file (Plotly's JS inlined, no network).

``build_dashboard(con, out_dir)`` is independent of Dagster, so the asset, the CLI and the
tests share it: it reads the marts through ``con`` (see ``data.py``), draws the charts with
Plotly (``charts.py``) and fills ``template.html``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from string import Template
from typing import Any

import plotly.io as pio
from plotly.offline import get_plotlyjs

from netflix_elt.dashboard.charts import Chart, build_charts
from netflix_elt.dashboard.data import MARTS_SCHEMA, Headline, Table, read_dashboard_data

TEMPLATE = Path(__file__).with_name("template.html")
INDEX = "index.html"
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
WIDE_CHARTS = {"genre-distribution", "user-engagement", "releases-per-year"}


@dataclass(frozen=True)
class DashboardResult:
    path: Path
    headline: Headline
    built_at: datetime
    charts: list[Chart] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.path.resolve().as_uri()

    def previews(self, rows: int = 10) -> dict[str, str]:
        """A markdown table of each chart's first rows, keyed by chart id (for Dagster metadata)."""
        return {c.key: markdown_table(c.table, rows) for c in self.charts}


def _fmt_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _fmt_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if 1800 <= value <= 2100 else f"{value:,}"  # years stay unformatted
    return str(value).replace("|", "\\|")


def markdown_table(table: Table, rows: int = 10) -> str:
    head = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns) + "\n"
    body = "".join("| " + " | ".join(_fmt_cell(v) for v in row) + " |\n" for row in table.rows[:rows])
    more = f"\n_{len(table) - rows} more rows_" if len(table) > rows else ""
    return head + body + more


def _kpi(label: str, value: str, note: str, kpi_id: str) -> str:
    return (
        f'    <div class="kpi" id="kpi-{kpi_id}"><div class="label">{html.escape(label)}</div>'
        f'<div class="value" data-value="{html.escape(value)}">{html.escape(value)}</div>'
        f'<div class="note">{html.escape(note)}</div></div>'
    )


def _kpis(h: Headline) -> str:
    span, span_note = "—", "no ratings"
    if h.first_rating_at and h.last_rating_at:
        years = (h.last_rating_at - h.first_rating_at).days / 365.25
        span = f"{h.first_rating_at:%Y} – {h.last_rating_at:%Y}"
        span_note = f"{h.first_rating_at:%Y-%m-%d} → {h.last_rating_at:%Y-%m-%d} ({years:,.1f} years)"
    return "\n".join(
        [
            _kpi("Ratings", f"{h.ratings:,}", f"{h.ratings / h.users:,.0f} per user" if h.users else "", "ratings"),
            _kpi("Users", f"{h.users:,}", "who rated at least one movie", "users"),
            _kpi("Movies", f"{h.movies:,}", f"{h.rated_movies:,} rated at least once", "movies"),
            _kpi("Ratings span", span, span_note, "span"),
        ]
    )


def _chart_card(chart: Chart) -> str:
    div = pio.to_html(
        chart.figure,
        config=PLOTLY_CONFIG,
        include_plotlyjs=False,  # inlined once in the page's <head>
        full_html=False,
        div_id=f"chart-{chart.key}",
        default_height=f"{chart.figure.layout.height or 400}px",
        default_width="100%",
    )
    wide = " wide" if chart.key in WIDE_CHARTS else ""
    return (
        f'  <article class="card{wide}" id="{chart.key}" data-chart="{chart.key}" data-points="{chart.expected_points}">\n'
        f"    <h2>{html.escape(chart.title)}</h2>\n    <p>{html.escape(chart.subtitle)}</p>\n    {div}\n  </article>"
    )


def render_html(data, charts: list[Chart], built_at: datetime, source: str = "the warehouse") -> str:
    h = data.headline
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        plotly_js=get_plotlyjs(),
        built_at=_fmt_time(built_at),
        built_at_iso=built_at.isoformat(timespec="seconds"),
        last_rating_at=_fmt_time(h.last_rating_at),
        kpis=_kpis(h),
        charts="\n".join(_chart_card(c) for c in charts),
        source=html.escape(source),
    )


def build_dashboard(con, out_dir: str | Path, schema: str = MARTS_SCHEMA, source: str = "the warehouse",
                    built_at: datetime | None = None) -> DashboardResult:
    """Read the marts through ``con`` and write ``<out_dir>/index.html``; return what was built.

    ``con`` is only used for the queries (a few small aggregates), so the caller can close it
    as soon as this returns. The file is written to a temporary name and renamed, so a
    browser never sees a half-written dashboard.
    """
    built_at = built_at or datetime.now(timezone.utc)
    data = read_dashboard_data(con, schema)
    charts = build_charts(data)
    page = render_html(data, charts, built_at, source)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / INDEX
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return DashboardResult(path=path, headline=data.headline, built_at=built_at, charts=charts)
