"""The dashboard over the marts: built from a real DuckDB warehouse, checked as HTML and in a real browser.

``built_warehouse`` yields a DuckDB file with the ``core`` and ``marts`` schemas. By default it
is a tiny warehouse made here with DuckDB SQL (a few movies, users and ratings, and marts
aggregated from them the way the dbt models do), so these tests run standalone in seconds. Set
``NETFLIX_ELT_TEST_WAREHOUSE`` to a warehouse built by a real pipeline run to test against it
instead (the file is copied first and opened read-only).
"""

from __future__ import annotations

import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from netflix_elt.assets.dashboard import MART_KEYS, DashboardSettings, dashboard as dashboard_asset
from netflix_elt.dashboard import MART_MODELS, build_dashboard
from netflix_elt.resources.warehouse import DuckDBWarehouse
from netflix_elt.settings import REPO_ROOT

ARTIFACTS = REPO_ROOT / "test-artifacts"

TINY_WAREHOUSE_SQL = """
create schema core;
create schema marts;

create table core.dim_movies as
select * from (values
    (1, 'Toy Story (1995)', 'Toy Story', 1995, ['Adventure', 'Animation', 'Children', 'Comedy'], 'Adventure|Animation|Children|Comedy', 'Adventure'),
    (2, 'Heat (1995)', 'Heat', 1995, ['Action', 'Crime', 'Thriller'], 'Action|Crime|Thriller', 'Action'),
    (3, 'Matrix, The (1999)', 'Matrix, The', 1999, ['Action', 'Sci-Fi', 'Thriller'], 'Action|Sci-Fi|Thriller', 'Action'),
    (4, 'Amelie (2001)', 'Amelie', 2001, ['Comedy', 'Romance'], 'Comedy|Romance', 'Comedy'),
    (5, 'Spirited Away (2001)', 'Spirited Away', 2001, ['Adventure', 'Animation', 'Fantasy'], 'Adventure|Animation|Fantasy', 'Adventure'),
    (6, 'Memento (2000)', 'Memento', 2000, ['Mystery', 'Thriller'], 'Mystery|Thriller', 'Mystery'),
    (7, 'Casablanca (1942)', 'Casablanca', 1942, ['Drama', 'Romance'], 'Drama|Romance', 'Drama'),
    (8, 'Up (2009)', 'Up', 2009, ['Adventure', 'Animation', 'Children', 'Drama'], 'Adventure|Animation|Children|Drama', 'Adventure'),
    (9, 'Nobody Rated This', 'Nobody Rated This', null, ['Documentary'], 'Documentary', 'Documentary')
) as t(movie_id, title, title_clean, release_year, genres, genres_raw, primary_genre);

-- 7 users x 8 movies, a deterministic two-thirds of the pairs, ratings 0.5..5.0 over 2009-2018
create table core.fct_ratings as
select
    u as user_id,
    m as movie_id,
    cast(((u * 3 + m * 7) % 10 + 1) / 2.0 as decimal(2, 1)) as rating,
    timestamp '2009-01-01 08:00:00' + to_days(cast(u * 211 + m * 97 as integer)) + to_seconds(u * 3600 + m * 60) as rated_at
from range(1, 8) as us(u), range(1, 9) as ms(m)
where (u * m) % 3 <> 0 or u = 1;

-- user 8 only tagged, never rated
create table core.fct_tags as select * from (values (8, 3, 'mind-bending'), (2, 6, 'nonlinear')) as t(user_id, movie_id, tag);

create table core.fct_genome_scores as
select m as movie_id, t as tag_id, tag, round(((m * 13 + t * 29) % 100) / 100.0, 4) as relevance
from range(1, 10) as ms(m), (values (1, 'twist ending'), (2, 'visually appealing'), (3, 'dystopia'), (4, 'heartwarming'), (5, 'classic')) as tg(t, tag);

create table core.dim_users as
with everyone as (select user_id from core.fct_ratings union select user_id from core.fct_tags)
select e.user_id,
       count(r.rating) as ratings_count,
       (select count(*) from core.fct_tags t where t.user_id = e.user_id) as tags_count,
       avg(cast(r.rating as double)) as avg_rating,
       min(r.rated_at) as first_rated_at,
       max(r.rated_at) as last_rated_at
from everyone e left join core.fct_ratings r using (user_id)
group by e.user_id;

create table marts.mart_movie_analysis as
with agg as (
    select m.movie_id, m.title_clean, m.release_year, m.primary_genre, m.genres_raw,
           count(*) as ratings_count, round(avg(cast(r.rating as double)), 4) as avg_rating,
           round(stddev_samp(cast(r.rating as double)), 4) as rating_stddev,
           round(avg(case when r.rating >= 4 then 1.0 else 0.0 end), 4) as positive_share
    from core.dim_movies m join core.fct_ratings r using (movie_id)
    group by all having count(*) >= 3
)
select row_number() over (order by avg_rating desc, ratings_count desc, movie_id) as rating_rank, *, 3 as min_ratings_threshold
from agg;

create table marts.mart_genre_rating_distribution as
with movie_genres as (select unnest(genres) as genre, movie_id from core.dim_movies)
select g.genre, g.genre as display_name,
       count(distinct g.movie_id) as movies_count, count(r.rating) as ratings_count,
       count(distinct r.user_id) as raters_count, round(avg(cast(r.rating as double)), 4) as avg_rating,
       count(*) filter (where r.rating = 0.5) as ratings_0_5, count(*) filter (where r.rating = 1.0) as ratings_1_0,
       count(*) filter (where r.rating = 1.5) as ratings_1_5, count(*) filter (where r.rating = 2.0) as ratings_2_0,
       count(*) filter (where r.rating = 2.5) as ratings_2_5, count(*) filter (where r.rating = 3.0) as ratings_3_0,
       count(*) filter (where r.rating = 3.5) as ratings_3_5, count(*) filter (where r.rating = 4.0) as ratings_4_0,
       count(*) filter (where r.rating = 4.5) as ratings_4_5, count(*) filter (where r.rating = 5.0) as ratings_5_0,
       round(count(*) filter (where r.rating >= 4) / nullif(count(r.rating), 0), 4) as share_4_stars_or_more
from movie_genres g left join core.fct_ratings r using (movie_id)
group by g.genre;

create table marts.mart_user_engagement_summary as
select u.user_id,
       case when u.ratings_count >= 1000 then 'power' when u.ratings_count >= 200 then 'heavy'
            when u.ratings_count >= 50 then 'regular' else 'casual' end as engagement_segment,
       u.ratings_count, u.tags_count, u.tags_count as tagged_movies_count, round(u.avg_rating, 4) as avg_rating,
       round((select avg(case when r.rating >= 4 then 1.0 else 0.0 end) from core.fct_ratings r where r.user_id = u.user_id), 4) as positive_share,
       u.first_rated_at as first_activity_at, u.last_rated_at as last_activity_at,
       date_diff('day', u.first_rated_at, u.last_rated_at) as active_span_days,
       (select count(distinct cast(rated_at as date)) from core.fct_ratings r where r.user_id = u.user_id) as active_days_count,
       (select count(distinct date_trunc('month', rated_at)) from core.fct_ratings r where r.user_id = u.user_id) as active_months_count,
       null::double as ratings_per_active_day,
       u.tags_count > 0 as is_tagger
from core.dim_users u;

create table marts.mart_tag_relevance_analysis as
with agg as (
    select tag_id, tag, count(*) as movies_scored, round(avg(relevance), 4) as avg_relevance,
           round(median(relevance), 4) as median_relevance, round(stddev_samp(relevance), 4) as relevance_stddev,
           min(relevance) as min_relevance, max(relevance) as max_relevance,
           count(*) filter (where relevance >= 0.8) as highly_relevant_movies_count,
           round(count(*) filter (where relevance >= 0.8) / count(*), 4) as highly_relevant_share,
           0 as top_tag_of_movies_count, cast(0.8 as decimal(2, 1)) as high_relevance_threshold
    from core.fct_genome_scores group by tag_id, tag
)
select row_number() over (order by avg_relevance desc, tag) as relevance_rank, * from agg;

create table marts.mart_movie_releases as
select m.movie_id, m.title_clean, m.release_year, m.genres, m.primary_genre,
       count(r.rating) as ratings_count, round(avg(cast(r.rating as double)), 4) as avg_rating,
       min(r.rated_at) as first_rated_at, max(r.rated_at) as last_rated_at,
       0 as distinct_user_tags_count, []::varchar[] as top_genome_tags
from core.dim_movies m left join core.fct_ratings r using (movie_id)
group by all;

create table marts.mart_movie_release_trends as
select release_year, count(*) as movies_released, count(*) filter (where ratings_count > 0) as movies_rated,
       sum(ratings_count) as ratings_count,
       round(sum(avg_rating * ratings_count) / nullif(sum(ratings_count), 0), 4) as avg_rating,
       round(avg(avg_rating), 4) as avg_movie_rating
from marts.mart_movie_releases
group by release_year;
"""


def make_tiny_warehouse(path: Path) -> Path:
    con = duckdb.connect(str(path))
    try:
        con.execute(TINY_WAREHOUSE_SQL)
    finally:
        con.close()
    return path


@pytest.fixture(scope="module")
def built_warehouse(tmp_path_factory) -> Path:
    """A DuckDB file with the marts: a real pipeline's (NETFLIX_ELT_TEST_WAREHOUSE) or a tiny one."""
    target = tmp_path_factory.mktemp("warehouse") / "warehouse.duckdb"
    given = os.environ.get("NETFLIX_ELT_TEST_WAREHOUSE")
    if given:
        shutil.copyfile(given, target)
        return target
    return make_tiny_warehouse(target)


@pytest.fixture(scope="module")
def built(built_warehouse, tmp_path_factory):
    """The dashboard built once from the warehouse, with the connection closed again."""
    con = duckdb.connect(str(built_warehouse), read_only=True)
    try:
        result = build_dashboard(con, tmp_path_factory.mktemp("dashboard"))
    finally:
        con.close()
    return result


@pytest.fixture(scope="module")
def page(built) -> str:
    return built.path.read_text(encoding="utf-8")


def sql_one(path: Path, sql: str):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchone()
    finally:
        con.close()


class ExternalRefs(HTMLParser):
    """Every src/href of script, link, img, iframe, source and object elements."""

    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str]] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and "src" not in attrs:
            self.inline_scripts += 1
        for name in ("src", "href", "data"):
            if tag in ("script", "link", "img", "iframe", "source", "object", "embed") and attrs.get(name):
                self.refs.append((tag, attrs[name]))


def test_the_dashboard_is_one_self_contained_html_file(built, page):
    parser = ExternalRefs()
    parser.feed(page)
    assert built.path.name == "index.html"
    assert [ref for ref in parser.refs if ref[1].startswith(("http://", "https://", "//"))] == []
    assert parser.refs == [], "every script and style is inlined: no src/href at all"
    head = page[: page.index("</head>")]
    assert "* plotly.js v" in head and len(head) > 1_000_000, "plotly.js is inlined once, in the head"
    assert parser.inline_scripts == 1 + len(built.charts)
    assert page.count("Plotly.newPlot(") == 5
    assert not list(built.path.parent.glob("*.tmp")), "the page is written to a temporary name, then renamed"


def test_the_headline_numbers_equal_sql_counts_over_the_core_tables(built, built_warehouse, page):
    ratings, users, first, last = sql_one(
        built_warehouse, "select count(*), count(distinct user_id), min(rated_at), max(rated_at) from core.fct_ratings"
    )
    movies, = sql_one(built_warehouse, "select count(*) from core.dim_movies")
    rated_movies, = sql_one(built_warehouse, "select count(distinct movie_id) from core.fct_ratings")
    h = built.headline
    assert (h.ratings, h.users, h.movies, h.rated_movies) == (ratings, users, movies, rated_movies)
    assert (h.first_rating_at, h.last_rating_at) == (first, last)
    for kpi, value in (("ratings", ratings), ("users", users), ("movies", movies)):
        assert f'id="kpi-{kpi}"><div class="label">' in page
        assert f'data-value="{value:,}"' in page
    assert f"{first:%Y-%m-%d} → {last:%Y-%m-%d}" in page


def test_the_page_says_how_fresh_the_data_and_the_dashboard_are(built, page):
    assert f'id="latest-rating">{built.headline.last_rating_at:%Y-%m-%d %H:%M} UTC<' in page
    assert f'id="built-at">{built.built_at:%Y-%m-%d %H:%M} UTC<' in page


def test_each_chart_has_rows_and_a_markdown_preview_for_the_dagster_ui(built):
    assert [c.key for c in built.charts] == ["top-movies", "tag-relevance", "genre-distribution", "user-engagement", "releases-per-year"]
    previews = built.previews(rows=5)
    for chart in built.charts:
        assert len(chart.table) > 0, chart.key
        lines = previews[chart.key].splitlines()
        assert lines[0] == "| " + " | ".join(chart.table.columns) + " |"
        assert len([line for line in lines if line.startswith("| ")]) == 1 + min(5, len(chart.table))


def test_the_top_rated_movies_chart_follows_the_mart_ranking(built, built_warehouse):
    top = next(c for c in built.charts if c.key == "top-movies")
    first_title, = sql_one(built_warehouse, "select title_clean from marts.mart_movie_analysis where rating_rank = 1")
    assert top.table.rows[0][top.table.columns.index("title")] == first_title
    assert top.table.column("rating_rank") == sorted(top.table.column("rating_rank"))


def test_the_dashboard_asset_depends_on_the_marts_and_reports_its_page(built_warehouse, tmp_path):
    assert {dep.asset_key for dep in dashboard_asset.specs_by_key[dg.AssetKey("dashboard")].deps} == set(MART_KEYS)
    assert {k.to_user_string() for k in MART_KEYS} == {f"marts/{name}" for name in MART_MODELS}
    writable = tmp_path / "warehouse.duckdb"  # DuckDBResource opens read-write: give it its own copy
    shutil.copyfile(built_warehouse, writable)
    out = tmp_path / "home" / "dashboard"
    result = dg.materialize(
        [dashboard_asset],
        resources={
            "warehouse": DuckDBWarehouse(duckdb=DuckDBResource(database=str(writable))),
            "dashboard_settings": DashboardSettings(output_dir=str(out)),
        },
    )
    assert result.success
    (mat,) = result.asset_materializations_for_node("dashboard")
    meta = mat.metadata
    assert meta["path"].value == str(out / "index.html") and (out / "index.html").is_file()
    assert meta["url"].value == (out / "index.html").as_uri()
    ratings, = sql_one(writable, "select count(*) from core.fct_ratings")
    assert meta["ratings"].value == ratings
    for key in ("top_movies", "tag_relevance", "genre_distribution", "user_engagement", "releases_per_year"):
        assert meta[f"preview_{key}"].value.count("\n|") >= 2, key
    duckdb.connect(str(writable)).close()  # the asset let go of the file: a writer can open it again


def test_the_dashboard_renders_in_a_real_browser_without_console_errors(built):
    """Playwright on Debian's Chromium (``playwright_browser``; make test installs it)."""
    from netflix_elt_tests.playwright_browser import new_page, screenshot, watch

    probe = """() => Array.from(document.querySelectorAll('[data-chart]')).map(card => ({
        key: card.dataset.chart,
        expected: Number(card.dataset.points),
        containers: card.querySelectorAll('.plot-container').length,
        svgs: card.querySelectorAll('.plot-container svg.main-svg').length,
        points: card.querySelectorAll('.plot-container .point').length,
        width: card.querySelector('.plot-container svg.main-svg')?.getBoundingClientRect().width || 0,
    }))"""
    # every chart drawn, with all its points (Plotly draws asynchronously, chart by chart)
    drawn = f"() => document.querySelectorAll('[data-chart]').length === {len(built.charts)} && " + """
        Array.from(document.querySelectorAll('[data-chart]')).every(card =>
        card.querySelectorAll('.plot-container svg.main-svg').length > 0
        && card.querySelectorAll('.plot-container .point').length >= Number(card.dataset.points))"""
    shot = ARTIFACTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    with new_page(viewport={"width": 1400, "height": 1000}) as browser_page:
        log = watch(browser_page)
        browser_page.goto(built.url, wait_until="load")
        browser_page.wait_for_function(drawn, timeout=60_000)
        browser_page.wait_for_timeout(500)  # late console errors
        charts = browser_page.evaluate(probe)
        screenshot(browser_page, shot, full_page=True)
    assert log.console_errors == [], log.console_messages
    assert [url for url in log.requests if not url.startswith("file://")] == [], "the page asks for nothing over the network"
    assert [c["key"] for c in charts] == [c.key for c in built.charts]
    for chart in charts:
        assert chart["containers"] == 1 and chart["svgs"] >= 1, chart
        assert chart["points"] >= chart["expected"] > 0, chart
        assert chart["width"] > 300, chart
    assert shot.is_file() and shot.stat().st_size > 20_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_browser_helper_reports_uncaught_errors_and_console_errors(tmp_path):
    """The console check above is not vacuous: a broken page is caught."""
    from netflix_elt_tests.playwright_browser import new_page, watch

    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>console.error('boom'); undefinedFunction();</script></body></html>")
    with new_page() as browser_page:
        log = watch(browser_page)
        browser_page.goto(broken.as_uri(), wait_until="load")
        browser_page.wait_for_timeout(200)
    assert any("boom" in e for e in log.console_errors), log.console_messages
    assert any("Uncaught" in e and "undefinedFunction" in e for e in log.console_errors), log.console_messages
