"""Synthetic MovieLens: files in MovieLens shape, at MovieLens scale, with no GroupLens data.

Why this exists: the pipeline has to be exercised at the real sizes (25 million ratings) and
with the Tag Genome, but GroupLens does not allow redistributing its datasets, and the genome
is not shipped with the small dataset at all. So we generate stand-ins that have the same
files, headers, keys and value rules as the catalogue (``netflix_elt.movielens``) describes,
and that the downstream dbt tests accept, while being unmistakably synthetic (every title says
"Synthetic").

How it stays fast and small: every file is one DuckDB ``COPY (SELECT ...) TO`` over
``range(n)``, so rows stream from DuckDB's vectorised engine to disk and are never held in
Python. Randomness is ``hash(i, seed, salt)`` rather than ``random()``: a hash of the row's
identity gives the same value whatever thread computes it, so the same seed writes
byte-identical files. Keys are unique *by construction* (see ``_increasing_positions_sql``),
not by deduplication, so no generated row is ever thrown away and the counts are exact.
"""

from __future__ import annotations

import argparse
import calendar
import math
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

from netflix_elt.movielens import CSV_READ_OPTIONS, dataset

# ---------------------------------------------------------------------------------------------
# Scales
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """The row counts and time span of one MovieLens release, which a run reproduces exactly."""

    name: str
    movies: int
    ratings: int
    users: int
    tags: int
    tag_users: int  # only a small share of MovieLens users ever tag
    genome_movies: int
    genome_tags: int
    first_day: str  # ratings and tags fall in [first_day, last_day] UTC
    last_day: str

    @property
    def genome_scores(self) -> int:
        return self.genome_movies * self.genome_tags


SCALES: dict[str, Scale] = {
    s.name: s
    for s in (
        Scale("ml-25m", 62_423, 25_000_095, 162_541, 1_093_360, 14_592, 13_816, 1_128, "1995-01-09", "2019-11-21"),
        Scale("ml-20m", 27_278, 20_000_263, 138_493, 465_564, 7_801, 10_381, 1_128, "1995-01-09", "2015-03-31"),
        # ml-latest-small has no genome; 1,000 x 100 keeps the genome proportionate to it.
        Scale("ml-latest-small", 9_742, 100_836, 610, 3_683, 58, 1_000, 100, "1996-03-29", "2018-09-24"),
    )
}


def resolve_scale(scale: str | float | Scale) -> Scale:
    """A preset name, or a fraction of ml-25m for quick runs.

    A fraction scales every count linearly except the genome tag vocabulary, which stays at
    1,128 tags so genome_scores (movies x tags) also scales linearly instead of quadratically.
    """
    if isinstance(scale, Scale):
        return scale
    if isinstance(scale, str) and scale in SCALES:
        return SCALES[scale]
    try:
        fraction = float(scale)
    except (TypeError, ValueError):
        fraction = math.nan
    if not (fraction > 0 and math.isfinite(fraction)):
        raise ValueError(
            f"unknown scale {scale!r}: use one of {', '.join(SCALES)} or a positive fraction of ml-25m such as 0.01"
        )
    base = SCALES["ml-25m"]

    def part(n: int) -> int:
        return max(1, round(n * fraction))

    return replace(
        base,
        name=f"{fraction:g} x ml-25m",
        movies=part(base.movies),
        ratings=part(base.ratings),
        users=part(base.users),
        tags=part(base.tags),
        tag_users=part(base.tag_users),
        genome_movies=part(base.genome_movies),
    )


# ---------------------------------------------------------------------------------------------
# Vocabularies (constants, embedded in the SQL as list literals)
# ---------------------------------------------------------------------------------------------

# The genres MovieLens actually uses (the README's "Children's" is spelled "Children" in the
# data, and IMAX appears though the README does not list it), with rough real frequencies.
GENRES: tuple[tuple[str, float], ...] = (
    ("Action", 0.12), ("Adventure", 0.07), ("Animation", 0.045), ("Children", 0.045),
    ("Comedy", 0.27), ("Crime", 0.08), ("Documentary", 0.08), ("Drama", 0.40),
    ("Fantasy", 0.045), ("Film-Noir", 0.005), ("Horror", 0.08), ("IMAX", 0.003),
    ("Musical", 0.015), ("Mystery", 0.04), ("Romance", 0.12), ("Sci-Fi", 0.06),
    ("Thriller", 0.14), ("War", 0.02), ("Western", 0.02),
)
NO_GENRES = "(no genres listed)"

TAG_WORDS: tuple[str, ...] = (
    "atmospheric", "funny", "quirky", "twist ending", "visually appealing", "dystopia",
    "time travel", "thought-provoking", "dark", "romantic", "violent", "surreal", "nonlinear",
    "cult classic", "heist", "space", "zombies", "superhero", "based on a book",
    "great soundtrack", "slow paced", "predictable", "clever", "beautiful", "stylized",
    "satire", "coming of age", "feel-good", "suspense", "philosophical", "bittersweet",
    "psychological", "witty", "gritty", "noir", "historical", "musical", "animated", "family",
    "inspirational", "intense", "melancholic", "absurd", "epic", "road trip", "friendship",
    "revenge", "true story",
)
TAG_MODIFIERS: tuple[str, ...] = (
    "very", "slightly", "not", "too", "mildly", "highly", "really", "somewhat", "oddly",
    "surprisingly", "utterly", "quietly", "overly", "wildly", "genuinely", "deeply", "almost",
    "barely", "gloriously", "strangely", "pleasantly", "painfully", "mostly", "weirdly",
)
# Distinct tag texts available: each word alone, then each modifier + word.
TAG_VOCABULARY_SIZE = len(TAG_WORDS) * (1 + len(TAG_MODIFIERS))

# MovieLens's rating distribution (ml-25m, rounded), as cumulative per-mille thresholds:
# skewed toward 3-4 stars, whole stars more common than half stars.
RATING_CUMULATIVE_PER_MILLE: tuple[tuple[float, int], ...] = (
    (0.5, 16), (1.0, 46), (1.5, 62), (2.0, 128), (2.5, 178),
    (3.0, 374), (3.5, 501), (4.0, 767), (4.5, 852), (5.0, 1000),
)
# MovieLens introduced half stars on 2003-02-18; earlier ratings are whole stars.
HALF_STARS_SINCE_EPOCH = 1_045_526_400

# ---------------------------------------------------------------------------------------------
# SQL building blocks
# ---------------------------------------------------------------------------------------------


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_list(items) -> str:
    return "[" + ", ".join(_sql_str(s) for s in items) + "]"


class _Rand:
    """Hash-based randomness for one seed: a pure function of (row identity, seed, salt).

    Every draw gets its own salt so that, say, a rating and its timestamp are independent even
    though they hash the same (user, movie).
    """

    def __init__(self, seed: int):
        self.seed = int(seed)

    def _hash(self, salt: str, args: tuple[str, ...]) -> str:
        return f"hash({', '.join(args)}, {self.seed}, {_sql_str(salt)})"

    def uniform(self, salt: str, *args: str) -> str:
        """A DOUBLE in [0, 1): the top 53 bits, so it can never round up to 1.0."""
        return f"(({self._hash(salt, args)} >> 11)::DOUBLE / 9007199254740992.0)"

    def below(self, n: int | str, salt: str, *args: str) -> str:
        """A BIGINT in [0, n)."""
        return f"(({self._hash(salt, args)} % ({n}))::BIGINT)"


def _increasing_positions_sql(k: str, count: str, space: str, jitter: str, skew: float) -> str:
    """The k-th of ``count`` distinct positions in [0, space), strictly increasing in k.

    This is what makes keys unique without deduplication: position = k + floor((space - count)
    * x_k ** skew) with x_k = (k + jitter_k) / count. x_k is non-decreasing in k (jitter < 1),
    so the second term is too, and adding k makes the sequence strictly increasing; it stays
    below ``space`` because x_k < 1. A skew > 1 packs positions toward 0, which is how low
    movie ids become the popular ones (as in MovieLens, where the 1990s classics have low ids).
    """
    return (
        f"({k} + floor(({space} - {count}) * pow(({k} + {jitter}) / {count}, {skew}))::BIGINT)"
    )


def _tag_text_sql(index: str, prefix: str = "") -> str:
    """Tag text for a vocabulary index in [0, TAG_VOCABULARY_SIZE): a word, or modifier + word."""
    words, modifiers = _sql_list(TAG_WORDS), _sql_list(TAG_MODIFIERS)
    n = len(TAG_WORDS)
    text = (
        f"CASE WHEN {index} < {n} THEN {words}[{index} + 1] "
        f"ELSE {modifiers}[{index} // {n}] || ' ' || {words}[{index} % {n} + 1] END"
    )
    return f"({_sql_str(prefix)} || {text})" if prefix else f"({text})"


def _relevance_sql(rand: _Rand, movie: str, tag: str) -> str:
    """Genome relevance: mostly low with a long tail toward 1, 5 decimals like MovieLens."""
    return f"round(pow({rand.uniform('relevance', movie, tag)}, 4), 5)"


def _bucket_member_sql(rand: _Rand, j: str, n_members: int, n_pool: int, salt: str) -> str:
    """The j-th of ``n_members`` distinct ids in 1..n_pool, spread over the pool.

    Member j lands in its own bucket [floor(j * pool / members), ...), at an offset below the
    smallest bucket width, so members are distinct and ascending by construction.
    """
    width = n_pool // n_members
    return f"(1 + ({j} * {n_pool}) // {n_members} + {rand.below(width, salt, j)})"


def _epoch(day: str) -> int:
    return calendar.timegm(time.strptime(day, "%Y-%m-%d"))


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def _connect(temp_dir: str) -> duckdb.DuckDBPyConnection:
    """A connection whose sorts spill to disk, so memory stays bounded at any scale."""
    con = duckdb.connect(config={"memory_limit": "600MB", "temp_directory": temp_dir})
    con.execute("SET preserve_insertion_order = true")
    con.execute("SET enable_progress_bar = false")  # the CLI prints its own report
    return con


def _copy(con: duckdb.DuckDBPyConnection, dataset_name: str, select_sql: str, out_dir: Path) -> int:
    """Write one catalogue file from a query, columns in catalogue order; returns rows written.

    The file is written next to its final name and renamed into place, so a reader never sees
    a half-written file under the real name.
    """
    ds = dataset(dataset_name)
    columns = ", ".join(f'"{c}"' for c in ds.column_names)
    target = out_dir / ds.file_name
    partial = out_dir / (ds.file_name + ".partial")
    rows = con.execute(
        f"COPY (SELECT {columns} FROM ({select_sql})) TO {_sql_str(str(partial))} "
        "(FORMAT csv, HEADER, DELIMITER ',', QUOTE '\"', NEW_LINE '\\n')"
    ).fetchone()[0]
    os.replace(partial, target)
    return int(rows)


# ---------------------------------------------------------------------------------------------
# Per-file queries
# ---------------------------------------------------------------------------------------------


def _movies_sql(rand: _Rand, scale: Scale) -> str:
    """Titles say "Synthetic"; some carry MovieLens's ", The" (so they need CSV quoting) and a
    few have no year, as in the real file. Genres are drawn independently, listed in alphabetical
    order like MovieLens, with "(no genres listed)" for a few."""
    last_year = int(scale.last_day[:4])
    # The largest of four uniforms: release years pile up toward recent decades (median ~2000).
    latest = ", ".join(rand.uniform(f"year{n}", "i") for n in range(4))
    year = f"(1902 + floor({last_year - 1902 + 1} * greatest({latest}))::INTEGER)"
    genre_flags = ", ".join(
        f"CASE WHEN {rand.below(100_000, 'genre:' + g, 'i')} < {round(p * 100_000)} THEN {_sql_str(g)} END"
        for g, p in GENRES
    )
    return f"""
        SELECT
            i + 1 AS movieId,
            'Synthetic Movie ' || (i + 1)
                || CASE WHEN {rand.below(20, 'article', 'i')} = 0 THEN ', The' ELSE '' END
                || CASE WHEN {rand.below(200, 'no year', 'i')} = 0 THEN '' ELSE ' (' || {year} || ')' END
                AS title,
            CASE
                WHEN genres <> '' THEN genres
                WHEN {rand.below(10, 'no genres', 'i')} = 0 THEN {_sql_str(NO_GENRES)}
                ELSE 'Drama'
            END AS genres
        FROM (SELECT i, concat_ws('|', {genre_flags}) AS genres FROM range({scale.movies}) t(i))
    """


def _links_sql(rand: _Rand, scale: Scale) -> str:
    """IMDb and TMDb ids from affine bijections of the movie id, so they are distinct like the
    real ones; imdbId is 7-digit zero-padded text, and a few tmdbIds are empty."""
    params = random.Random(rand.seed)
    imdb_mod, tmdb_mod = 9_999_991, 999_983  # primes: any multiplier below them is a bijection
    imdb_a, imdb_b = params.randrange(1, imdb_mod), params.randrange(imdb_mod)
    tmdb_a, tmdb_b = params.randrange(1, tmdb_mod), params.randrange(tmdb_mod)
    return f"""
        SELECT
            i + 1 AS movieId,
            lpad((1 + ((i * {imdb_a} + {imdb_b}) % {imdb_mod}))::VARCHAR, 7, '0') AS imdbId,
            CASE WHEN {rand.below(1000, 'no tmdb', 'i')} < 2 THEN NULL
                 ELSE (1 + (i * {tmdb_a} + {tmdb_b}) % {tmdb_mod})::INTEGER END AS tmdbId
        FROM range({scale.movies}) t(i)
    """


def _allocate(
    con: duckdb.DuckDBPyConnection,
    rand: _Rand,
    table: str,
    *,
    owners: int,
    total: int,
    minimum: int,
    space: int,
    salt: str,
) -> None:
    """Split ``total`` rows over ``owners`` (users) with a heavy tail, summing to ``total`` exactly.

    Each owner gets ``minimum`` plus a share of the rest proportional to an integer Pareto-like
    weight, apportioned as differences of floor(cumulative share) so the shares telescope to the
    exact total. Weights are capped so no owner can ask for more distinct items than ``space``
    holds (a user cannot rate more movies than exist): with weights in [1, cap] an owner's extra
    is at most rest * cap / owners + 1.
    """
    minimum = min(minimum, total // owners)
    rest = total - minimum * owners
    cap = 300.0 if rest == 0 else min(300.0, (space - minimum - 2) * owners / rest)
    if cap < 1 or minimum > space:
        raise ValueError(
            f"cannot fit {total:,} distinct rows over {owners:,} users and {space:,} items; "
            "use a larger scale"
        )
    weight = f"least({cap}, pow(1.0 - {rand.uniform(salt + ':weight', 'i')}, -0.8))"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        WITH w AS (
            SELECT i AS owner, floor(1000 * {weight})::HUGEINT AS w FROM range({owners}) t(i)
        ), c AS (
            SELECT owner, sum(w) OVER (ORDER BY owner) AS cum, sum(w) OVER () AS total_w FROM w
        )
        SELECT
            owner,
            ({minimum} + ({rest} * cum) // total_w
                - coalesce(lag(({rest} * cum) // total_w) OVER (ORDER BY owner), 0))::BIGINT
                AS n
        FROM c
    """)


def _activity_columns_sql(rand: _Rand, scale: Scale, owner: str) -> str:
    """Each user is active from a start time for a span that is usually short (many users rate
    everything in one sitting), all inside the release's time range."""
    lo, hi = _epoch(scale.first_day), _epoch(scale.last_day)
    start = f"({lo} + floor({hi - lo} * {rand.uniform('start', owner)})::BIGINT)"
    return (
        f"{start} AS active_from, "
        f"floor(({hi} - {start}) * pow({rand.uniform('span', owner)}, 3))::BIGINT AS active_span"
    )


def _ratings_sql(con: duckdb.DuckDBPyConnection, rand: _Rand, scale: Scale) -> str:
    """Each user rates n distinct movies (increasing positions), sorted like MovieLens."""
    _allocate(con, rand, "rating_users", owners=scale.users, total=scale.ratings, minimum=20,
              space=scale.movies, salt="ratings")
    jitter = rand.uniform("movie", "owner", "k")
    position = _increasing_positions_sql("k", "n", str(scale.movies), jitter, 2.0)
    base = " ".join(
        f"WHEN x < {threshold} THEN {stars}" for stars, threshold in RATING_CUMULATIVE_PER_MILLE
    )
    # A per-movie quality nudges some ratings up or down, so movies differ in average rating.
    nudge = f"(({rand.below(5, 'quality', 'movieId')} - 2) * 0.5 * ({rand.below(2, 'nudge', 'userId', 'movieId')}))"
    return f"""
        SELECT userId, movieId, timestamp,
            CASE WHEN timestamp < {HALF_STARS_SINCE_EPOCH} THEN ceil(stars) ELSE stars END AS rating
        FROM (
            SELECT userId, movieId, timestamp,
                least(5.0, greatest(0.5, (CASE {base} END) + {nudge}))::DOUBLE AS stars
            FROM (
                SELECT userId, movieId,
                    active_from + floor(active_span * {rand.uniform('time', 'userId', 'movieId')})::BIGINT AS timestamp,
                    {rand.below(1000, 'stars', 'userId', 'movieId')} AS x
                FROM (
                    SELECT owner + 1 AS userId, {position} + 1 AS movieId, active_from, active_span
                    FROM (SELECT *, {_activity_columns_sql(rand, scale, 'owner')} FROM rating_users) u,
                         range(u.n) r(k)
                )
            )
        )
        ORDER BY userId, movieId
    """


def _tags_sql(con: duckdb.DuckDBPyConnection, rand: _Rand, scale: Scale) -> str:
    """A few users tag; each applies n distinct (movie, tag text) pairs, often several tags to
    one movie, as real taggers do. Pairs are increasing positions in movies x vocabulary, and
    each user's vocabulary is rotated so users favour different words. Tag times fall in the
    tagger's own rating activity window (same hash of the user id as in ratings)."""
    tag_users = min(scale.tag_users, scale.users)
    space = scale.movies * TAG_VOCABULARY_SIZE
    _allocate(con, rand, "tag_users", owners=tag_users, total=scale.tags, minimum=1, space=space,
              salt="tags")
    jitter = rand.uniform("tag pair", "owner", "k")
    position = _increasing_positions_sql("k", "n", str(space), jitter, 2.0)
    user_id = _bucket_member_sql(rand, "owner", tag_users, scale.users, "tagger")
    rotation = rand.below(TAG_VOCABULARY_SIZE, "rotation", "owner")
    word = f"((pos % {TAG_VOCABULARY_SIZE} + {rotation}) % {TAG_VOCABULARY_SIZE})"
    return f"""
        SELECT userId, movieId, tag,
            active_from + floor(active_span * {rand.uniform('tag time', 'userId', 'movieId', 'tag')})::BIGINT AS timestamp
        FROM (
            SELECT userId, pos // {TAG_VOCABULARY_SIZE} + 1 AS movieId, {_tag_text_sql(word)} AS tag,
                {_activity_columns_sql(rand, scale, 'userId - 1')}
            FROM (
                SELECT owner, {user_id} AS userId, {position} AS pos
                FROM tag_users u, range(u.n) r(k)
            )
        )
        ORDER BY userId, movieId, tag
    """


def _genome_tags_sql(n_tags: int, prefix: str = "") -> str:
    if not 1 <= n_tags <= TAG_VOCABULARY_SIZE:
        raise ValueError(f"n_tags must be in 1..{TAG_VOCABULARY_SIZE}, got {n_tags}")
    return f"SELECT i + 1 AS tagId, {_tag_text_sql('i', prefix)} AS tag FROM range({n_tags}) t(i)"


def _genome_scores_sql(rand: _Rand, scale: Scale) -> str:
    """Genome movies are spread over the catalogue; one row per (movie, tag), in key order
    because range() streams in order."""
    g, t = scale.genome_movies, scale.genome_tags
    movie = _bucket_member_sql(rand, "(i // {t})".format(t=t), g, scale.movies, "genome movie")
    return f"""
        SELECT movieId, tagId, {_relevance_sql(rand, 'movieId', 'tagId')} AS relevance
        FROM (SELECT {movie} AS movieId, i % {t} + 1 AS tagId FROM range({g * t}) r(i))
    """


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def generate(out_dir: str | os.PathLike, *, scale: str | float | Scale = "ml-25m", seed: int = 42) -> dict[str, int]:
    """Write all six MovieLens files for ``scale`` into ``out_dir``; return rows per file name.

    The same seed writes byte-identical files (every value is a hash of its row's identity and
    the seed, and every file is written in key order).
    """
    resolved = resolve_scale(scale)
    if resolved.genome_movies > resolved.movies:
        raise ValueError("the genome cannot cover more movies than the catalogue has")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rand = _Rand(seed)
    with tempfile.TemporaryDirectory(prefix="netflix-elt-synthetic-") as spill:
        con = _connect(spill)
        try:
            # Allocation runs first so an infeasible scale fails before any file is written.
            ratings = _ratings_sql(con, rand, resolved)
            tags = _tags_sql(con, rand, resolved)
            queries = {
                "movies": _movies_sql(rand, resolved),
                "links": _links_sql(rand, resolved),
                "ratings": ratings,
                "tags": tags,
                "genome_tags": _genome_tags_sql(resolved.genome_tags),
                "genome_scores": _genome_scores_sql(rand, resolved),
            }
            return {dataset(name).file_name: _copy(con, name, sql, out) for name, sql in queries.items()}
        finally:
            con.close()


GENOME_README = """\
Synthetic Tag Genome
====================

genome_tags.csv and genome_scores.csv in this directory are SYNTHETIC. They were generated by
netflix-elt (netflix_elt.synthetic.write_synthetic_genome) from hash-based pseudo-random
numbers over the movie ids of {movies}. They are NOT GroupLens data and say nothing about
the movies: GroupLens does not allow redistributing the real Tag Genome, so the demo ships this
stand-in with the same shape (tagId,tag and movieId,tagId,relevance, relevance in [0, 1]).

Tags: {n_tags}. Movies: {n_movies}. Seed: {seed}.
"""


def write_synthetic_genome(
    movies_csv: str | os.PathLike, out_dir: str | os.PathLike, *, n_tags: int = 64, seed: int = 42
) -> dict[str, int]:
    """Write a synthetic Tag Genome over the movies of a real ``movies.csv``.

    Why: the default demo runs over the shipped ml-latest-small, which has no genome, and the
    real genome may not be redistributed. Tag texts carry a ``synthetic:`` prefix so nobody
    mistakes them for GroupLens's, and a README says so.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rand = _Rand(seed)
    movies = dataset("movies")
    columns = "{" + ", ".join(f"{_sql_str(c.name)}: {_sql_str(c.reader_type)}" for c in movies.columns) + "}"
    source = f"read_csv({_sql_str(str(movies_csv))}, {CSV_READ_OPTIONS}, columns = {columns})"
    scores = f"""
        SELECT movieId, tagId, {_relevance_sql(rand, 'movieId', 'tagId')} AS relevance
        FROM (SELECT DISTINCT movieId FROM {source}) m, (SELECT i + 1 AS tagId FROM range({n_tags}) t(i)) g
        ORDER BY movieId, tagId
    """
    with tempfile.TemporaryDirectory(prefix="netflix-elt-synthetic-") as spill:
        con = _connect(spill)
        try:
            counts = {
                dataset("genome_tags").file_name: _copy(con, "genome_tags", _genome_tags_sql(n_tags, "synthetic: "), out),
                dataset("genome_scores").file_name: _copy(con, "genome_scores", scores, out),
            }
        finally:
            con.close()
    n_movies = counts[dataset("genome_scores").file_name] // n_tags
    (out / "README.txt").write_text(
        GENOME_README.format(movies=Path(movies_csv).name, n_tags=n_tags, n_movies=n_movies, seed=seed),
        encoding="utf-8",
        newline="\n",
    )
    return counts


def main(argv: list[str] | None = None) -> int:
    """``netflix-elt-generate``: write a synthetic MovieLens release and report what it wrote."""
    parser = argparse.ArgumentParser(
        prog="netflix-elt-generate",
        description="Generate synthetic MovieLens files (clearly synthetic data, MovieLens shape).",
    )
    parser.add_argument("--out", required=True, help="directory to write the six CSV files into")
    parser.add_argument(
        "--scale",
        default="ml-25m",
        help=f"one of {', '.join(SCALES)}, or a fraction of ml-25m such as 0.01 (default: ml-25m)",
    )
    parser.add_argument("--seed", type=int, default=42, help="same seed, byte-identical files (default: 42)")
    args = parser.parse_args(argv)
    try:
        scale = resolve_scale(args.scale)
    except ValueError as exc:
        parser.error(str(exc))

    started = time.perf_counter()
    try:
        counts = generate(args.out, scale=scale, seed=args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    elapsed = time.perf_counter() - started

    out = Path(args.out)
    print(f"synthetic MovieLens ({scale.name}, seed {args.seed}) in {out}")
    total_bytes = 0
    for file_name, rows in counts.items():
        size = (out / file_name).stat().st_size
        total_bytes += size
        print(f"  {file_name:<20} {rows:>12,} rows {size:>15,} bytes")
    print(f"  {'total':<20} {sum(counts.values()):>12,} rows {total_bytes:>15,} bytes in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
