"""The raw loader on real DuckDB and a real folder store: idempotence and bad input."""

from __future__ import annotations

import duckdb
import pytest

from netflix_elt.layout import object_key
from netflix_elt.loading.duckdb_loader import DuckDBRawLoader, ensure_raw_schema
from netflix_elt.loading.inspect_file import DeliveryError
from netflix_elt.movielens import DATASETS, dataset
from netflix_elt.resources.object_store import FolderObjectStore
from netflix_elt_tests.conftest import write_csv

RATINGS = dataset("ratings")
MOVIES = dataset("movies")
GOOD_RATINGS = """userId,movieId,rating,timestamp
1,1,4.0,964982703
1,3,4.5,964981247
2,1,0.5,964982224
"""


@pytest.fixture
def store(tmp_path):
    return FolderObjectStore(root=str(tmp_path / "store"))


@pytest.fixture
def con(tmp_path):
    c = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_raw_schema(c, DATASETS)
    yield c
    c.close()


def deliver(store, tmp_path, key, text, newline="\n"):
    src = write_csv(tmp_path / "upload.csv", text, newline)
    return store.put_file(src, key)


def rows(con, table):
    return con.execute(f'select * exclude (_loaded_at) from raw."{table}" order by all').fetchall()


def rejects(con):
    return con.execute("select object_key, line_number, raw_line, reason from raw._load_rejects order by line_number").fetchall()


def test_crlf_and_lf_files_load_the_same_rows(store, con, tmp_path):
    loader = DuckDBRawLoader(con, store)
    crlf = deliver(store, tmp_path, "raw/ratings/month=2000-07/ratings.csv", GOOD_RATINGS, "\r\n")
    loader.load(RATINGS, crlf)
    crlf_rows = [r[:-1] for r in rows(con, "ratings")]
    con.execute("delete from raw.ratings")
    con.execute("delete from raw._load_ledger")
    lf = deliver(store, tmp_path, "raw/ratings/month=2000-07/ratings.csv", GOOD_RATINGS, "\n")
    outcome = loader.load(RATINGS, lf)
    assert outcome.rows_loaded == 3 and outcome.rows_rejected == 0
    assert [r[:-1] for r in rows(con, "ratings")] == crlf_rows


def test_loading_the_same_object_twice_duplicates_nothing(store, con, tmp_path):
    loader = DuckDBRawLoader(con, store)
    obj = deliver(store, tmp_path, "raw/ratings/month=2000-07/ratings.csv", GOOD_RATINGS)
    first = loader.load(RATINGS, obj)
    second = loader.load(RATINGS, obj)
    assert (first.status, second.status) == ("loaded", "unchanged")
    assert len(rows(con, "ratings")) == 3


def test_identical_bytes_reuploaded_under_a_new_etag_load_nothing(store, con, tmp_path):
    loader = DuckDBRawLoader(con, store)
    loader.load(RATINGS, deliver(store, tmp_path, "raw/ratings/month=2000-07/ratings.csv", GOOD_RATINGS))
    again = deliver(store, tmp_path, "raw/ratings/month=2000-07/ratings.csv", GOOD_RATINGS)
    assert loader.load(RATINGS, again).status == "unchanged"
    assert len(rows(con, "ratings")) == 3


def test_a_second_object_with_identical_bytes_is_recorded_as_a_duplicate_delivery(store, con, tmp_path):
    loader = DuckDBRawLoader(con, store)
    loader.load(RATINGS, deliver(store, tmp_path, "raw/ratings/month=2000-07/ratings.csv", GOOD_RATINGS))
    copy = loader.load(RATINGS, deliver(store, tmp_path, "raw/ratings/month=2000-07/ratings-copy.csv", GOOD_RATINGS))
    assert copy.status == "duplicate" and copy.duplicate_of == "raw/ratings/month=2000-07/ratings.csv"
    assert len(rows(con, "ratings")) == 3


def test_a_changed_object_replaces_exactly_its_own_rows(store, con, tmp_path):
    loader = DuckDBRawLoader(con, store)
    loader.load(RATINGS, deliver(store, tmp_path, "raw/ratings/month=2000-07/ratings.csv", GOOD_RATINGS))
    loader.load(RATINGS, deliver(store, tmp_path, "raw/ratings/month=2000-08/ratings.csv",
                                 "userId,movieId,rating,timestamp\n9,9,3.0,967000000\n"))
    corrected = "userId,movieId,rating,timestamp\n1,1,2.0,964982703\n"
    loader.load(RATINGS, deliver(store, tmp_path, "raw/ratings/month=2000-07/ratings.csv", corrected))
    assert [r[:4] for r in rows(con, "ratings")] == [(1, 1, 2.0, 964982703), (9, 9, 3.0, 967000000)]


def test_bad_rows_are_kept_with_line_number_text_and_reason_while_good_rows_load(store, con, tmp_path):
    text = (
        "userId,movieId,rating,timestamp\n"
        "1,1,4.0,964982703\n"  # line 2: good
        "1,x,4.0,964982703\n"  # line 3: non-numeric id
        "1,2,7.0,964982703\n"  # line 4: rating out of range
        "1,3,3.0\n"  # line 5: too few fields
        "1,4,3.0,5,6\n"  # line 6: too many fields
        "1,5,3.3,964982703\n"  # line 7: not a half step
        "1,6,3.0,yesterday\n"  # line 8: bad timestamp
        "-1,7,3.0,964982703\n"  # line 9: negative id
        "2,2,5.0,964982703\n"  # line 10: good
    )
    outcome = DuckDBRawLoader(con, store).load(RATINGS, deliver(store, tmp_path, "raw/ratings/month=2000-07/ratings.csv", text, "\r\n"))
    assert (outcome.rows_in_file, outcome.rows_loaded, outcome.rows_rejected) == (9, 2, 7)
    got = rejects(con)
    assert [r[1] for r in got] == [3, 4, 5, 6, 7, 8, 9]
    assert got[0][2] == "1,x,4.0,964982703"
    assert got[1][2] == "1,2,7.0,964982703" and "rating" in got[1][3]
    assert "half" in got[4][3] or "round" in got[4][3]
    assert "timestamp" in got[5][3]
    assert [r[:2] for r in rows(con, "ratings")] == [(1, 1), (2, 2)]


def test_reloading_a_fixed_object_clears_its_old_rejects(store, con, tmp_path):
    loader = DuckDBRawLoader(con, store)
    key = "raw/ratings/month=2000-07/ratings.csv"
    loader.load(RATINGS, deliver(store, tmp_path, key, GOOD_RATINGS + "1,x,1.0,1\n"))
    assert len(rejects(con)) == 1
    loader.load(RATINGS, deliver(store, tmp_path, key, GOOD_RATINGS))
    assert rejects(con) == []


def test_quoted_titles_with_commas_load_as_one_field(store, con, tmp_path):
    text = 'movieId,title,genres\n11,"American President, The (1995)",Comedy|Drama|Romance\n'
    DuckDBRawLoader(con, store).load(MOVIES, deliver(store, tmp_path, object_key(MOVIES), text))
    assert rows(con, "movies")[0][:3] == (11, "American President, The (1995)", "Comedy|Drama|Romance")


@pytest.mark.parametrize(
    "text, problem",
    [
        ("", "empty"),
        ("movieId,name,genres\n1,Toy Story (1995),Comedy\n", "wrong header"),
        ("movieId,genres\n1,Comedy\n", "missing ['title']"),
        ("movieId,title,genres\n1,Toy Story (1995),Comedy\n2,Jumanji (19", "truncated"),
    ],
    ids=["empty", "renamed-column", "missing-column", "truncated"],
)
def test_a_broken_file_fails_with_a_message_naming_the_object_and_the_problem(store, con, tmp_path, text, problem):
    obj = deliver(store, tmp_path, object_key(MOVIES), text)
    with pytest.raises(DeliveryError) as err:
        DuckDBRawLoader(con, store).load(MOVIES, obj)
    assert problem in str(err.value) and "raw/movies/movies.csv" in str(err.value)
    assert rows(con, "movies") == []


def test_reordered_columns_load_by_header_name(store, con, tmp_path):
    text = "genres,title,movieId\nComedy,Toy Story (1995),1\n"
    outcome = DuckDBRawLoader(con, store).load(MOVIES, deliver(store, tmp_path, object_key(MOVIES), text))
    assert outcome.rows_loaded == 1
    assert rows(con, "movies")[0][:3] == (1, "Toy Story (1995)", "Comedy")


def test_an_added_column_is_ignored_and_reported_while_the_known_columns_load(store, con, tmp_path):
    text = "userId,movieId,rating,source,timestamp\n1,1,4.0,web,964982703\n1,2,9.0,app,964982703\n"
    outcome = DuckDBRawLoader(con, store).load(RATINGS, deliver(store, tmp_path, "raw/ratings/month=2000-07/ratings.csv", text))
    assert outcome.ignored_columns == ("source",)
    assert [r[:4] for r in rows(con, "ratings")] == [(1, 1, 4.0, 964982703)]
    assert rejects(con)[0][1:3] == (3, "1,2,9.0,app,964982703")


def test_a_renamed_column_fails_naming_the_missing_and_the_unexpected_columns(store, con, tmp_path):
    obj = deliver(store, tmp_path, "raw/ratings/month=2000-07/ratings.csv", "userId,itemId,rating,timestamp\n1,1,4.0,1\n")
    with pytest.raises(DeliveryError, match=r"missing \['movieId'\]; unexpected \['itemId'\]"):
        DuckDBRawLoader(con, store).load(RATINGS, obj)


@pytest.mark.parametrize("name", ["part 1.csv", "r\u00e9sum\u00e9 \u2013 \u00e9t\u00e9.csv", "it's; drop table raw.ratings; --.csv", 'say "hi".csv'])
def test_odd_object_keys_load_and_cannot_inject_sql(store, con, tmp_path, name):
    key = f"raw/ratings/month=2000-07/{name}"
    outcome = DuckDBRawLoader(con, store).load(RATINGS, deliver(store, tmp_path, key, GOOD_RATINGS))
    assert outcome.rows_loaded == 3
    assert con.execute("select distinct _source_object from raw.ratings").fetchall() == [(key,)]
    assert con.execute("select object_key from raw._load_ledger").fetchall() == [(key,)]
