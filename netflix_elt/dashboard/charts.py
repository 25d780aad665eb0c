"""The dashboard's charts, as Plotly figures (``plotly.graph_objects`` only: no pandas).

Each builder takes the small tables from ``data.py`` and returns a ``go.Figure``; all the
drawing, hover, zoom and legend toggling is Plotly's. ``CHARTS`` lists them in page order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from netflix_elt.dashboard.data import RATING_VALUES, DashboardData, Table

ACCENT = "#e50914"
ACCENT_DARK = "#b20710"
INK = "#221f1f"
MUTED = "#6b7280"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
# 0.5 stars (red) .. 5 stars (green), one colour per rating value
RATING_COLOURS = ("#a50026", "#d73027", "#f46d43", "#fdae61", "#fee08b", "#d9ef8b", "#a6d96a", "#66bd63", "#1a9850", "#006837")


@dataclass(frozen=True)
class Chart:
    key: str  # the element id in the page, also the metadata key in Dagster
    title: str
    subtitle: str
    figure: go.Figure
    table: Table  # the rows behind the chart, previewed in the Dagster UI
    expected_points: int  # data points the rendered chart must show (checked by the browser test)


def _layout(fig: go.Figure, height: int, **overrides) -> go.Figure:
    layout = dict(
        template="plotly_white",
        height=height,
        margin=dict(l=10, r=20, t=10, b=40),
        font=dict(family=FONT, size=13, color=INK),
        hoverlabel=dict(font=dict(family=FONT)),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
    )
    layout.update(overrides)
    fig.update_layout(**layout)
    return fig


def _legend_below(extra: dict | None = None) -> dict:
    """A legend under the plot, placed in pixels from the figure's bottom (keeps clear of axis titles)."""
    return dict(orientation="h", yref="container", y=0, yanchor="bottom", xanchor="left", x=0, **(extra or {}))


def _short(text: str, limit: int = 34) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def top_movies(data: DashboardData) -> Chart:
    t = data.top_movies
    # best at the top: a horizontal bar chart draws its first category at the bottom
    rows = list(reversed(t.rows))
    col = {name: i for i, name in enumerate(t.columns)}
    labels = [_short(r[col["title"]]) + (f" ({r[col['release_year']]})" if r[col["release_year"]] else "") for r in rows]
    fig = go.Figure(
        go.Bar(
            x=[r[col["avg_rating"]] for r in rows],
            y=labels,
            orientation="h",
            marker_color=ACCENT,
            text=[f"{r[col['avg_rating']]:.2f}" for r in rows],
            textposition="inside",
            insidetextanchor="end",
            textfont=dict(color="white"),
            customdata=[[r[col["ratings_count"]], r[col["primary_genre"]], 100 * (r[col["positive_share"]] or 0)] for r in rows],
            hovertext=[r[col["title"]] for r in rows],
            hovertemplate="<b>%{hovertext}</b><br>Average rating %{x:.3f}<br>%{customdata[0]:,} ratings"
            "<br>Genre %{customdata[1]}<br>%{customdata[2]:.0f}% positive<extra></extra>",
        )
    )
    low, high = min(t.column("avg_rating"), default=0), max(t.column("avg_rating"), default=5)
    _layout(fig, height=max(320, 26 * len(rows) + 80), margin=dict(l=10, r=20, t=30, b=50))
    fig.update_xaxes(title_text="Average rating (stars)", range=[max(0, low - 0.2), min(5, high + 0.05)])
    fig.update_yaxes(automargin=True)
    threshold = data.min_ratings_threshold
    subtitle = f"Top {len(t)} movies by average rating" + (f", among movies with at least {threshold} ratings" if threshold else "")
    return Chart("top-movies", "Top-rated movies", subtitle, fig, t, len(t))


def genre_distribution(data: DashboardData) -> Chart:
    t = data.genres
    genres = list(reversed(t.column("genre")))  # highest average at the top
    totals = list(reversed(t.column("ratings_count")))
    fig = go.Figure()
    for value, colour in zip(RATING_VALUES, RATING_COLOURS):
        counts = list(reversed(t.column(f"ratings_{value.replace('.', '_')}")))
        fig.add_trace(
            go.Bar(
                name=f"{value}★",
                y=genres,
                x=[100 * c / n if n else 0 for c, n in zip(counts, totals)],
                orientation="h",
                marker_color=colour,
                customdata=counts,
                hovertemplate=f"<b>%{{y}}</b><br>{value} stars: %{{customdata:,}} ratings (%{{x:.1f}}%)<extra></extra>",
            )
        )
    avgs = list(reversed(t.column("avg_rating")))
    known = [a for a in avgs if a is not None] or [2.5, 4.5]
    avg_range = [max(0.25, min(known) - 0.25), min(5.25, max(known) + 0.25)]
    fig.add_trace(
        go.Scatter(
            name="average",
            y=genres,
            x=[a or 0 for a in avgs],
            xaxis="x2",
            mode="markers",
            marker=dict(symbol="diamond", size=10, color=INK, line=dict(color="white", width=1)),
            customdata=totals,
            hovertemplate="<b>%{y}</b><br>Average %{x:.2f} stars over %{customdata:,} ratings<extra></extra>",
        )
    )
    _layout(
        fig,
        height=max(400, 24 * len(genres) + 190),
        barmode="stack",
        xaxis=dict(title_text="Share of the genre's ratings (%)", range=[0, 100], domain=[0, 0.7], ticksuffix="%"),
        xaxis2=dict(title_text="Average rating (stars)", domain=[0.78, 1], range=avg_range, anchor="y", showgrid=True),
        legend=_legend_below({"traceorder": "normal"}),
        margin=dict(l=10, r=20, t=30, b=100),
    )
    fig.update_yaxes(automargin=True)
    return Chart(
        "genre-distribution",
        "Genre rating distribution",
        "How each genre's ratings spread over 0.5 to 5 stars, and its average (a movie counts in all its genres)",
        fig,
        t,
        len(t),
    )


def user_engagement(data: DashboardData) -> Chart:
    seg, hist = data.engagement_segments, data.ratings_per_user
    fig = make_subplots(
        rows=1, cols=2, column_widths=[0.45, 0.55], horizontal_spacing=0.14,
        subplot_titles=("Users and their share of all ratings, by segment", "Users by number of ratings given"),
        specs=[[{"secondary_y": True}, {}]],
    )
    fig.add_trace(
        go.Bar(
            name="users", x=seg.column("segment"), y=seg.column("users"), marker_color="#9ca3af",
            customdata=seg.column("median_ratings_per_user"),
            hovertemplate="<b>%{x}</b><br>%{y:,} users<br>median %{customdata:,.0f} ratings each<extra></extra>",
        ),
        row=1, col=1,
    )
    fig.add_trace(
        go.Scatter(
            name="share of ratings", x=seg.column("segment"), y=[100 * (s or 0) for s in seg.column("ratings_share")],
            mode="lines+markers", marker=dict(size=10, color=ACCENT), line=dict(color=ACCENT),
            customdata=seg.column("ratings_count"),
            hovertemplate="<b>%{x}</b><br>%{y:.1f}% of all ratings (%{customdata:,})<extra></extra>",
        ),
        row=1, col=1, secondary_y=True,
    )
    labels = [f"{a:,}–{b:,}" for a, b in zip(hist.column("ratings_from"), hist.column("ratings_to"))]
    fig.add_trace(
        go.Bar(
            name="users by ratings given", x=labels, y=hist.column("users"), marker_color=ACCENT_DARK, showlegend=False,
            hovertemplate="%{x} ratings: %{y:,} users<extra></extra>",
        ),
        row=1, col=2,
    )
    top_share = max([100 * (s or 0) for s in seg.column("ratings_share")], default=100)
    _layout(fig, height=430, margin=dict(l=10, r=20, t=60, b=110), legend=_legend_below())
    fig.update_yaxes(title_text="users", row=1, col=1, secondary_y=False)
    fig.update_yaxes(title_text="share of all ratings", row=1, col=1, secondary_y=True, showgrid=False,
                     range=[0, max(top_share * 1.12, 1)], dtick=10 if top_share <= 60 else 20, ticksuffix="%", tickformat=".0f")
    fig.update_yaxes(title_text="users", row=1, col=2)
    fig.update_xaxes(title_text="ratings given (log₂ buckets)", row=1, col=2)
    fig.update_annotations(font_size=13)
    return Chart(
        "user-engagement",
        "User engagement",
        "Segments: casual < 50 ratings ≤ regular < 200 ≤ heavy < 1,000 ≤ power",
        fig,
        seg,
        len(seg) * 2 + len(hist),  # a bar and a marker per segment, a bar per bucket
    )


def tag_relevance(data: DashboardData) -> Chart:
    t = data.tags
    rows = list(reversed(t.rows))
    col = {name: i for i, name in enumerate(t.columns)}
    tags = [r[col["tag"]] for r in rows]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            name="average relevance", y=tags, x=[r[col["avg_relevance"]] for r in rows], orientation="h",
            marker_color="#f59e0b",
            customdata=[[r[col["movies_scored"]], r[col["highly_relevant_movies_count"]], 100 * (r[col["highly_relevant_share"]] or 0)] for r in rows],
            hovertemplate="<b>%{y}</b><br>average relevance %{x:.3f}<br>%{customdata[0]:,} movies scored"
            "<br>%{customdata[1]:,} highly relevant (%{customdata[2]:.1f}%)<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            name="median relevance", y=tags, x=[r[col["median_relevance"]] for r in rows], mode="markers",
            marker=dict(symbol="line-ns-open", size=14, color=INK, line=dict(width=3, color=INK)),
            hovertemplate="<b>%{y}</b><br>median relevance %{x:.3f}<extra></extra>",
        )
    )
    _layout(fig, height=max(340, 26 * len(rows) + 120), margin=dict(l=10, r=20, t=30, b=100), legend=_legend_below())
    fig.update_xaxes(title_text="Genome relevance (0–1)", rangemode="tozero")
    fig.update_yaxes(automargin=True)
    threshold = data.high_relevance_threshold
    subtitle = f"The {len(t)} tags with the highest average relevance across the movies scored" + (
        f"; “highly relevant” means relevance ≥ {threshold:g}" if threshold is not None else ""
    )
    return Chart("tag-relevance", "Tag relevance", subtitle, fig, t, len(t))


def releases_per_year(data: DashboardData) -> Chart:
    t = data.releases
    years = t.column("release_year")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(
            name="movies released", x=years, y=t.column("movies_released"), marker_color="#60a5fa",
            customdata=list(zip(t.column("movies_rated"), t.column("ratings_count"))),
            hovertemplate="<b>%{x}</b><br>%{y:,} movies released<br>%{customdata[0]:,} rated, %{customdata[1]:,} ratings<extra></extra>",
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            name="average movie rating", x=years, y=t.column("avg_movie_rating"), mode="lines",
            line=dict(color=ACCENT, width=2), connectgaps=False,
            hovertemplate="<b>%{x}</b><br>average movie rating %{y:.2f}<extra></extra>",
        ),
        secondary_y=True,
    )
    _layout(fig, height=400, margin=dict(l=10, r=20, t=40, b=50), bargap=0.1, hovermode="x unified")
    fig.update_xaxes(title_text="release year", rangeslider=dict(visible=False))
    fig.update_yaxes(title_text="movies released", secondary_y=False)
    fig.update_yaxes(title_text="average rating (stars)", secondary_y=True, range=[0, 5], dtick=1, showgrid=False)
    return Chart(
        "releases-per-year",
        "Releases per year",
        "Movies in the catalogue by release year, and the average rating of that year's movies",
        fig,
        t,
        len(t),
    )


CHARTS: tuple[Callable[[DashboardData], Chart], ...] = (
    top_movies,
    tag_relevance,
    genre_distribution,
    user_engagement,
    releases_per_year,
)


def build_charts(data: DashboardData) -> list[Chart]:
    return [make(data) for make in CHARTS]
