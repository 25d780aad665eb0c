"""Hand-made deliveries, to watch the sensor work: a new month of ratings, a changed movie.

``netflix-elt deliver ratings --month 2026-11`` writes a month of ratings by new users (ids
above every existing one, so no (user, movie) pair collides with history) for existing
movies. ``netflix-elt deliver movie --movie-id 1 --title "..."`` re-delivers movies.csv with
one title changed, which the SCD2 snapshot then records as a new version. The extract does not
undo either: it never overwrites an object someone else delivered since it last wrote it (see
``netflix_elt.assets.extract_state``), so the next ``netflix-elt run`` keeps the changed title.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import duckdb

from netflix_elt.layout import object_key
from netflix_elt.movielens import CSV_READ_OPTIONS, dataset
from netflix_elt.partitions import month_window
from netflix_elt.resources.object_store import ObjectStore, StoredObject

FIRST_DELIVERED_USER_ID = 1_000_000
RATINGS_PER_NEW_USER = 50
MAX_ROWS_PER_MONTH = 50_000  # 1,000 new users a month, each month its own block of user ids


def deliver_ratings_month(store: ObjectStore, movies_csv: Path, month: str, rows: int = 500, seed: int = 7,
                          work_dir: Path | None = None) -> StoredObject:
    ds = dataset("ratings")
    if not 0 < rows <= MAX_ROWS_PER_MONTH:
        raise ValueError(f"rows must be in 1..{MAX_ROWS_PER_MONTH}, got {rows}")
    start, end = month_window(month)
    first_user = FIRST_DELIVERED_USER_ID + ((start.year - 1995) * 12 + start.month - 1) * (MAX_ROWS_PER_MONTH // RATINGS_PER_NEW_USER)
    lo, span = int(start.timestamp()), int((end - start).total_seconds())
    movie_columns = ", ".join(f"'{c.name}': '{c.sql_type}'" for c in dataset("movies").columns)
    if work_dir is not None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)  # a fresh home has no scratch folder yet
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        out = Path(tmp) / ds.file_name
        con = duckdb.connect()
        try:
            con.execute(
                f"""create temp table movie_ids as
                    select movieId, row_number() over (order by movieId) - 1 as i
                    from read_csv(?, {CSV_READ_OPTIONS}, columns={{{movie_columns}}})""",
                [str(movies_csv)],
            )
            n_movies = con.execute("select count(*) from movie_ids").fetchone()[0]
            # Each new user rates consecutive movies: distinct (user, movie) pairs by construction.
            per = RATINGS_PER_NEW_USER
            con.execute(
                f"""copy (
                      select {first_user} + r // {per} as userId, m.movieId,
                             (1 + hash(r, {seed}) % 10) / 2.0 as rating,
                             {lo} + hash(r, {seed}, 'ts') % {span} as timestamp
                      from range({rows}) t(r)
                      join movie_ids m on m.i = (hash(r // {per}, {seed}) + r % {per}) % {n_movies}
                      order by r
                    ) to '{out}' (format csv, header true)"""
            )
        finally:
            con.close()
        return store.move_file(out, object_key(ds, month))


def deliver_movie_change(store: ObjectStore, movie_id: int, new_title: str) -> StoredObject:
    """Re-deliver the store's current movies.csv with one title changed (quoting kept valid)."""
    ds = dataset("movies")
    key = object_key(ds)
    with store.local_copy(key) as current, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / ds.file_name
        found = False
        with open(current, newline="", encoding="utf-8") as src, open(out, "w", newline="", encoding="utf-8") as dst:
            writer = csv.writer(dst, lineterminator="\r\n")
            for row in csv.reader(src):
                if row and row[0] == str(movie_id):
                    row[1], found = new_title, True
                writer.writerow(row)
        if not found:
            raise KeyError(f"movie {movie_id} is not in {store.describe(key)}")
        return store.move_file(out, key)
