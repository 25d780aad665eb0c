"""What the dashboard shows, read from the marts as small, already-aggregated result sets.

Every query here reads the ``marts`` schema only and returns at most a few hundred rows, so
the dashboard costs the same on ml-latest-small and ml-25m. Rows come back as plain Python
values (no pandas / numpy): DECIMALs are cast to DOUBLE in SQL so they serialise to JSON.

``con`` is anything with ``execute(sql).fetchall()`` and ``.description`` on the result: a
DuckDB connection (the local warehouse) or a DB-API cursor (Snowflake), from
``Warehouse.marts_connection()``. The SQL is written once for both: no parameters (the
connectors spell them differently), no ``FILTER`` clause or ``log2`` (Snowflake has neither),
and column names are read case-insensitively (Snowflake returns them upper-case).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MARTS_SCHEMA = "marts"

# The dbt models the dashboard reads; their Dagster asset keys are these names.
MART_MODELS = (
    "mart_movie_analysis",
    "mart_genre_rating_distribution",
    "mart_user_engagement_summary",
    "mart_tag_relevance_analysis",
    "mart_movie_release_trends",
    "mart_movie_releases",
)

TOP_MOVIES = 20
TOP_TAGS = 20
RATING_VALUES = ("0.5", "1.0", "1.5", "2.0", "2.5", "3.0", "3.5", "4.0", "4.5", "5.0")
SEGMENT_ORDER = ("casual", "regular", "heavy", "power")


@dataclass(frozen=True)
class Table:
    """A small result set: column names and rows of plain Python values."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [row[i] for row in self.rows]

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Headline:
    ratings: int
    users: int  # users with at least one rating
    movies: int  # movies in the catalogue
    rated_movies: int  # movies with at least one rating
    first_rating_at: datetime | None
    last_rating_at: datetime | None  # the data's freshness


@dataclass(frozen=True)
class DashboardData:
    headline: Headline
    top_movies: Table
    genres: Table
    engagement_segments: Table
    ratings_per_user: Table
    tags: Table
    releases: Table
    min_ratings_threshold: int | None = None
    high_relevance_threshold: float | None = None
    extras: dict = field(default_factory=dict)


def query(con, sql: str) -> Table:
    cur = con.execute(sql)
    columns = tuple(d[0].lower() for d in cur.description)
    return Table(columns, tuple(tuple(r) for r in cur.fetchall()))


def _count_if(condition: str) -> str:
    return f"sum(case when {condition} then 1 else 0 end)"


def read_headline(con, schema: str = MARTS_SCHEMA) -> Headline:
    [(ratings, users)] = query(
        con,
        f"""select coalesce(sum(ratings_count), 0), {_count_if("ratings_count > 0")}
            from {schema}.mart_user_engagement_summary""",
    ).rows
    [(movies, rated, first, last)] = query(
        con,
        f"""select count(*), {_count_if("ratings_count > 0")}, min(first_rated_at), max(last_rated_at)
            from {schema}.mart_movie_releases""",
    ).rows
    return Headline(int(ratings or 0), int(users or 0), int(movies), int(rated or 0), first, last)


def read_dashboard_data(con, schema: str = MARTS_SCHEMA) -> DashboardData:
    s = schema
    top_movies = query(
        con,
        f"""select rating_rank, title_clean as title, release_year, primary_genre, ratings_count,
                   cast(avg_rating as double) as avg_rating, cast(positive_share as double) as positive_share,
                   min_ratings_threshold
            from {s}.mart_movie_analysis
            where rating_rank <= {int(TOP_MOVIES)}
            order by rating_rank, movie_id""",
    )
    bins = ", ".join(f"ratings_{v.replace('.', '_')}" for v in RATING_VALUES)
    genres = query(
        con,
        f"""select coalesce(display_name, genre) as genre, movies_count, ratings_count,
                   cast(avg_rating as double) as avg_rating,
                   cast(share_4_stars_or_more as double) as share_4_stars_or_more, {bins}
            from {s}.mart_genre_rating_distribution
            where ratings_count > 0
            order by avg_rating desc, genre""",
    )
    order = " ".join(f"when '{seg}' then {i}" for i, seg in enumerate(SEGMENT_ORDER))
    engagement_segments = query(
        con,
        f"""select engagement_segment as segment, count(*) as users,
                   sum(ratings_count) as ratings_count,
                   cast(sum(ratings_count) as double) / nullif(sum(sum(ratings_count)) over (), 0) as ratings_share,
                   cast(avg(avg_rating) as double) as avg_rating,
                   cast(median(ratings_count) as double) as median_ratings_per_user,
                   {_count_if("is_tagger")} as taggers
            from {s}.mart_user_engagement_summary
            where ratings_count > 0
            group by engagement_segment
            order by case engagement_segment {order} else 99 end, engagement_segment""",
    )
    ratings_per_user = _log2_buckets(query(
        con,
        f"""select ratings_count, count(*) as users
            from {s}.mart_user_engagement_summary
            where ratings_count > 0
            group by 1""",
    ))
    tags = query(
        con,
        f"""select relevance_rank, tag, movies_scored,
                   cast(avg_relevance as double) as avg_relevance,
                   cast(median_relevance as double) as median_relevance,
                   cast(highly_relevant_share as double) as highly_relevant_share,
                   highly_relevant_movies_count,
                   cast(high_relevance_threshold as double) as high_relevance_threshold
            from {s}.mart_tag_relevance_analysis
            where relevance_rank <= {int(TOP_TAGS)}
            order by relevance_rank, tag""",
    )
    releases = query(
        con,
        f"""select release_year, movies_released, movies_rated, ratings_count,
                   cast(avg_movie_rating as double) as avg_movie_rating
            from {s}.mart_movie_release_trends
            where release_year is not null
            order by release_year""",
    )
    thresholds = top_movies.column("min_ratings_threshold")
    relevance = tags.column("high_relevance_threshold")
    return DashboardData(
        headline=read_headline(con, schema),
        top_movies=top_movies,
        genres=genres,
        engagement_segments=engagement_segments,
        ratings_per_user=ratings_per_user,
        tags=tags,
        releases=releases,
        min_ratings_threshold=thresholds[0] if thresholds else None,
        high_relevance_threshold=relevance[0] if relevance else None,
    )


def _log2_buckets(counts: Table) -> Table:
    """Users by how many ratings they gave, in log-2 buckets [2^k, 2^(k+1)), from one row per
    distinct count (a few thousand at most). Bucketed here, with exact integer arithmetic:
    warehouses disagree on log functions, and floating-point logs misplace exact powers of 2."""
    buckets: dict[int, int] = {}
    for ratings, users in counts.rows:
        low = 1 << (int(ratings).bit_length() - 1)
        buckets[low] = buckets.get(low, 0) + int(users)
    return Table(("ratings_from", "ratings_to", "users"), tuple((low, 2 * low - 1, n) for low, n in sorted(buckets.items())))
