"""The dataset catalogue: the one place that says what MovieLens delivers.

Every other part of the project derives from these definitions or is tested against them:
the extract assets (which file, which object key), the raw-table loaders (column names and
types, header check, validation rules), the dbt sources (tested to list the same tables and
columns), the Snowflake DDL, and the sensor (which keys belong to which dataset).

Column names are MovieLens's own (``movieId``, ``userId``...): the raw layer keeps the
delivery as delivered and dbt's staging layer renames to snake_case.
"""

from __future__ import annotations

from dataclasses import dataclass

# Columns the loader adds to every raw table, after the delivered columns. They make a load
# replaceable (delete by ``_source_object``) and traceable back to the exact object.
LOAD_METADATA_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_source_object", "VARCHAR"),
    ("_loaded_at", "TIMESTAMP"),
)


@dataclass(frozen=True)
class Column:
    """One delivered column.

    ``sql_type`` is the raw table's type (DuckDB spelling; the Snowflake DDL maps it).
    ``read_type`` is the stricter type the CSV reader casts to, so a cast failure *is* the
    validation (a negative id or a fractional epoch is rejected with its line number by the
    reader itself, in one streaming pass). ``check`` is an extra SQL predicate over the typed
    value for rules a type cannot express (a rating in half steps, a relevance in [0, 1]).
    """

    name: str
    sql_type: str
    description: str
    nullable: bool = False
    read_type: str | None = None
    check: str | None = None

    @property
    def reader_type(self) -> str:
        return self.read_type or self.sql_type


@dataclass(frozen=True)
class Dataset:
    """One MovieLens file and the raw table it loads into."""

    name: str  # raw table name and object-store folder: raw/<name>/...
    file_names: tuple[str, ...]  # accepted source file names, preferred first
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # the grain: unique per row in a clean delivery
    description: str
    partitioned_by_month: bool = False  # ratings: one object per month of ``timestamp``
    time_column: str | None = None
    redistributable: bool = True  # the Tag Genome may not be redistributed (GroupLens terms)

    @property
    def file_name(self) -> str:
        """The canonical file name, also used as the object name in the store."""
        return self.file_names[0]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def header(self) -> str:
        return ",".join(self.column_names)

    @property
    def checks(self) -> tuple[tuple[str, str], ...]:
        """(column, predicate) pairs for the rules a type cannot express."""
        return tuple((c.name, c.check) for c in self.columns if c.check)


_UINT = "UINTEGER"  # reader type for ids and epochs: rejects negatives and fractions

DATASETS: tuple[Dataset, ...] = (
    Dataset(
        name="movies",
        file_names=("movies.csv",),
        columns=(
            Column("movieId", "INTEGER", "MovieLens movie id.", read_type=_UINT),
            Column("title", "VARCHAR", "Title with the release year in parentheses, e.g. 'Toy Story (1995)'."),
            Column("genres", "VARCHAR", "Pipe-separated genres, or '(no genres listed)'."),
        ),
        key=("movieId",),
        description="One row per movie: title (with year) and pipe-separated genres.",
    ),
    Dataset(
        name="ratings",
        file_names=("ratings.csv",),
        columns=(
            Column("userId", "INTEGER", "Anonymised MovieLens user id.", read_type=_UINT),
            Column("movieId", "INTEGER", "MovieLens movie id.", read_type=_UINT),
            Column(
                "rating",
                "DOUBLE",
                "Star rating, 0.5 to 5.0 in half-star steps.",
                check="rating between 0.5 and 5.0 and rating * 2 = round(rating * 2)",
            ),
            Column("timestamp", "BIGINT", "Seconds since 1970-01-01 UTC.", read_type=_UINT),
        ),
        key=("userId", "movieId"),
        description="One row per (user, movie) rating. Delivered as one object per month of rating time.",
        partitioned_by_month=True,
        time_column="timestamp",
    ),
    Dataset(
        name="tags",
        file_names=("tags.csv",),
        columns=(
            Column("userId", "INTEGER", "Anonymised MovieLens user id.", read_type=_UINT),
            Column("movieId", "INTEGER", "MovieLens movie id.", read_type=_UINT),
            Column("tag", "VARCHAR", "Free-text tag a user applied to a movie."),
            Column("timestamp", "BIGINT", "Seconds since 1970-01-01 UTC.", read_type=_UINT),
        ),
        key=("userId", "movieId", "tag"),
        description="One row per tag a user applied to a movie.",
        time_column="timestamp",
    ),
    Dataset(
        name="genome_scores",
        file_names=("genome_scores.csv", "genome-scores.csv"),
        columns=(
            Column("movieId", "INTEGER", "MovieLens movie id.", read_type=_UINT),
            Column("tagId", "INTEGER", "Tag Genome tag id.", read_type=_UINT),
            Column(
                "relevance",
                "DOUBLE",
                "How strongly the tag applies to the movie, in [0, 1].",
                check="relevance between 0 and 1",
            ),
        ),
        key=("movieId", "tagId"),
        description="Tag Genome: relevance of every genome tag to every movie in the genome.",
        redistributable=False,
    ),
    Dataset(
        name="genome_tags",
        file_names=("genome_tags.csv", "genome-tags.csv"),
        columns=(
            Column("tagId", "INTEGER", "Tag Genome tag id.", read_type=_UINT),
            Column("tag", "VARCHAR", "Tag Genome tag text."),
        ),
        key=("tagId",),
        description="Tag Genome: the tag vocabulary.",
        redistributable=False,
    ),
    Dataset(
        name="links",
        file_names=("links.csv",),
        columns=(
            Column("movieId", "INTEGER", "MovieLens movie id.", read_type=_UINT),
            Column("imdbId", "VARCHAR", "IMDb id without the 'tt' prefix; text, to keep its leading zeros."),
            Column("tmdbId", "INTEGER", "The Movie Database id; empty for a few movies.", nullable=True, read_type=_UINT),
        ),
        key=("movieId",),
        description="Identifiers of each movie on IMDb and TMDb.",
    ),
)

DATASETS_BY_NAME: dict[str, Dataset] = {d.name: d for d in DATASETS}

# How every MovieLens file is written (RFC 4180: commas, double quotes, quotes doubled, a header
# row), as DuckDB's read_csv options; types come from the columns, never from sniffing.
CSV_READ_OPTIONS = "header=true, auto_detect=false, delim=',', quote='\"', escape='\"'"

# The object-store layout: everything MovieLens lives under this prefix of the bucket.
RAW_PREFIX = "raw/"
# First month of the ratings partitions: MovieLens ratings start in 1995.
RATINGS_START_MONTH = "1995-01-01"


def dataset(name: str) -> Dataset:
    try:
        return DATASETS_BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown MovieLens dataset {name!r}; known: {sorted(DATASETS_BY_NAME)}") from None
