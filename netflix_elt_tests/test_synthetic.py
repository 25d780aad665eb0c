"""The synthetic generator writes what the catalogue describes, so the pipeline cannot tell it
from a MovieLens delivery except by its (deliberately) synthetic contents."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from netflix_elt import synthetic
from netflix_elt.movielens import DATASETS, dataset
from netflix_elt.settings import SHIPPED_DATA

FRACTION = 0.01
SCALE = synthetic.resolve_scale(FRACTION)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("synthetic")
    return out, synthetic.generate(out, scale=FRACTION, seed=42)


@pytest.fixture(scope="module")
def db(generated) -> duckdb.DuckDBPyConnection:
    """The generated files as tables, read with the catalogue's strict reader types."""
    out, _ = generated
    con = duckdb.connect()
    for ds in DATASETS:
        columns = "{" + ", ".join(f"'{c.name}': '{c.reader_type}'" for c in ds.columns) + "}"
        con.execute(
            f"CREATE TABLE {ds.name} AS SELECT * FROM read_csv('{out / ds.file_name}', header = true, "
            f"delim = ',', quote = '\"', escape = '\"', columns = {columns})"
        )
    return con


def scalar(con: duckdb.DuckDBPyConnection, sql: str):
    return con.execute(sql).fetchone()[0]


def test_every_catalogue_file_is_written_with_the_catalogue_header_and_lf_endings(generated):
    out, counts = generated
    assert set(counts) == {ds.file_name for ds in DATASETS}
    for ds in DATASETS:
        data = (out / ds.file_name).read_bytes()
        assert data.split(b"\n", 1)[0].decode() == ds.header
        assert b"\r" not in data


def test_row_counts_match_the_requested_scale(generated, db):
    _, counts = generated
    expected = {
        "movies": SCALE.movies,
        "links": SCALE.movies,
        "ratings": SCALE.ratings,
        "tags": SCALE.tags,
        "genome_tags": SCALE.genome_tags,
        "genome_scores": SCALE.genome_movies * SCALE.genome_tags,
    }
    assert SCALE.ratings == round(25_000_095 * FRACTION)
    for name, rows in expected.items():
        assert counts[dataset(name).file_name] == rows
        assert scalar(db, f"SELECT count(*) FROM {name}") == rows
    assert scalar(db, "SELECT count(DISTINCT userId) FROM ratings") == SCALE.users


def test_named_presets_carry_the_exact_movielens_counts():
    ml25 = synthetic.resolve_scale("ml-25m")
    assert (ml25.ratings, ml25.movies, ml25.tags, ml25.users) == (25_000_095, 62_423, 1_093_360, 162_541)
    assert ml25.genome_scores == 15_584_448
    ml20 = synthetic.resolve_scale("ml-20m")
    assert (ml20.ratings, ml20.movies, ml20.tags, ml20.users) == (20_000_263, 27_278, 465_564, 138_493)
    assert ml20.genome_scores == 11_709_768
    small = synthetic.resolve_scale("ml-latest-small")
    assert (small.ratings, small.movies, small.tags, small.users) == (100_836, 9_742, 3_683, 610)


def test_every_key_in_the_catalogue_is_unique(db):
    for ds in DATASETS:
        key = ", ".join(f'"{c}"' for c in ds.key)
        assert scalar(db, f"SELECT count(*) - count(DISTINCT ({key})) FROM {ds.name}") == 0, ds.name


def test_catalogue_checks_hold_for_every_row(db):
    for ds in DATASETS:
        for column, predicate in ds.checks:
            assert scalar(db, f"SELECT count(*) FROM {ds.name} WHERE NOT ({predicate})") == 0, (ds.name, column)


def test_ratings_are_half_stars_skewed_toward_three_and_four(db):
    stars = dict(db.execute("SELECT rating, count(*) FROM ratings GROUP BY rating").fetchall())
    assert set(stars) == {x / 2 for x in range(1, 11)}
    assert stars[4.0] == max(stars.values())
    assert (stars[3.0] + stars[3.5] + stars[4.0]) / sum(stars.values()) > 0.45


def test_ratings_are_written_like_movielens(generated):
    out, _ = generated
    with open(out / "ratings.csv", encoding="utf-8") as f:
        next(f)
        first = next(f).rstrip("\n").split(",")
    assert first[2] in {f"{x / 2:.1f}" for x in range(1, 11)}
    assert first[3].isdigit()


def test_timestamps_fall_in_the_release_time_range(db):
    lo, hi = synthetic._epoch(SCALE.first_day), synthetic._epoch(SCALE.last_day)
    for table in ("ratings", "tags"):
        assert scalar(db, f"SELECT count(*) FROM {table} WHERE timestamp NOT BETWEEN {lo} AND {hi}") == 0


def test_ratings_and_tags_refer_only_to_existing_movies(db):
    for table in ("ratings", "tags", "genome_scores", "links"):
        assert scalar(db, f"SELECT count(*) FROM {table} ANTI JOIN movies USING (movieId)") == 0, table
    assert scalar(db, "SELECT count(*) FROM genome_scores ANTI JOIN genome_tags USING (tagId)") == 0


def test_movies_are_numbered_from_one_with_synthetic_titles_and_movielens_genres(db, generated):
    assert db.execute("SELECT min(movieId), max(movieId) FROM movies").fetchone() == (1, SCALE.movies)
    assert scalar(db, "SELECT count(*) FROM movies WHERE title NOT LIKE 'Synthetic Movie %'") == 0
    allowed = {g for g, _ in synthetic.GENRES}
    for (genres,) in db.execute("SELECT DISTINCT genres FROM movies").fetchall():
        assert genres == synthetic.NO_GENRES or set(genres.split("|")) <= allowed, genres
    assert scalar(db, r"SELECT count(*) FROM movies WHERE regexp_matches(title, '\(\d{4}\)$')") > 0.9 * SCALE.movies
    out, _ = generated
    assert b'"Synthetic Movie ' in (out / "movies.csv").read_bytes()  # titles with a comma are quoted


def test_links_keep_imdb_ids_as_seven_digit_text(db):
    assert scalar(db, r"SELECT count(*) FROM links WHERE NOT regexp_matches(imdbId, '^\d{7}$')") == 0


def test_genome_covers_every_genome_movie_times_every_tag(db):
    assert db.execute("SELECT min(tagId), max(tagId) FROM genome_tags").fetchone() == (1, SCALE.genome_tags)
    per_movie = db.execute("SELECT DISTINCT count(*) FROM genome_scores GROUP BY movieId").fetchall()
    assert per_movie == [(SCALE.genome_tags,)]
    assert scalar(db, "SELECT count(DISTINCT movieId) FROM genome_scores") == SCALE.genome_movies
    assert scalar(db, "SELECT count(*) FROM genome_scores WHERE relevance <> round(relevance, 5)") == 0


def test_same_seed_writes_byte_identical_files(generated, tmp_path):
    out, _ = generated
    synthetic.generate(tmp_path, scale=FRACTION, seed=42)
    for ds in DATASETS:
        assert (tmp_path / ds.file_name).read_bytes() == (out / ds.file_name).read_bytes(), ds.file_name


def test_a_different_seed_writes_different_data(generated, tmp_path):
    out, _ = generated
    synthetic.generate(tmp_path, scale=FRACTION, seed=7)
    for name in ("ratings.csv", "tags.csv", "movies.csv", "genome_scores.csv"):
        assert (tmp_path / name).read_bytes() != (out / name).read_bytes(), name


def test_a_fraction_too_small_to_hold_its_ratings_is_refused(tmp_path):
    with pytest.raises(ValueError, match="cannot fit"):
        synthetic.generate(tmp_path, scale=0.0005)


def test_synthetic_genome_covers_every_shipped_movie(tmp_path):
    movies_csv = SHIPPED_DATA / "movies.csv"
    counts = synthetic.write_synthetic_genome(movies_csv, tmp_path, n_tags=16)
    assert counts == {"genome_tags.csv": 16, "genome_scores.csv": 9_742 * 16}
    con = duckdb.connect()
    assert scalar(con, f"SELECT count(DISTINCT movieId) FROM '{tmp_path / 'genome_scores.csv'}'") == 9_742
    missing = scalar(
        con,
        f"SELECT count(*) FROM read_csv('{movies_csv}', header = true) m "
        f"ANTI JOIN '{tmp_path / 'genome_scores.csv'}' g USING (movieId)",
    )
    assert missing == 0
    assert scalar(con, f"SELECT count(*) FROM '{tmp_path / 'genome_scores.csv'}' WHERE relevance NOT BETWEEN 0 AND 1") == 0
    tags = [t for (t,) in con.execute(f"SELECT tag FROM '{tmp_path / 'genome_tags.csv'}'").fetchall()]
    assert all(t.startswith("synthetic: ") for t in tags)
    readme = (tmp_path / "README.txt").read_text()
    assert "SYNTHETIC" in readme and "NOT GroupLens data" in readme


def test_cli_writes_the_files_and_reports_rows_bytes_and_time(tmp_path, capsys):
    assert synthetic.main(["--out", str(tmp_path), "--scale", "0.005", "--seed", "3"]) == 0
    report = capsys.readouterr().out
    assert "ratings.csv" in report and "bytes" in report and " s" in report
    assert (tmp_path / "ratings.csv").exists()


def test_cli_rejects_an_unknown_scale_with_a_clear_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        synthetic.main(["--out", str(tmp_path), "--scale", "ml-100k"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "unknown scale 'ml-100k'" in error and "ml-25m" in error
    assert not list(tmp_path.iterdir())
