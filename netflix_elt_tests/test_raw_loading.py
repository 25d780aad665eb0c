"""The raw loader on real DuckDB and a real folder store: idempotence and bad input."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pytest

from netflix_elt.layout import object_key
from netflix_elt.loading import duckdb_loader
from netflix_elt.loading.duckdb_loader import DuckDBRawLoader, _batches, ensure_raw_schema
from netflix_elt.loading import inspect_file as inspect_file_module
from netflix_elt.loading.inspect_file import DeliveryError, inspect_file
from netflix_elt.movielens import DATASETS, dataset
from netflix_elt.resources.object_store import FolderObjectStore, StoredObject
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


def test_an_id_too_large_for_its_column_is_a_rejected_row_not_a_failed_load(store, con, tmp_path):
    text = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n3000000000,2,4.0,964982703\n2,2147483647,5.0,964982703\n"
    outcome = DuckDBRawLoader(con, store).load(RATINGS, deliver(store, tmp_path, "raw/ratings/month=2000-07/ratings.csv", text))
    assert (outcome.rows_in_file, outcome.rows_loaded, outcome.rows_rejected) == (3, 2, 1)
    (reject,) = rejects(con)
    assert reject[1:3] == (3, "3000000000,2,4.0,964982703") and "userId out of range" in reject[3]
    assert [r[:2] for r in rows(con, "ratings")] == [(1, 1), (2, 2147483647)]


def test_an_out_of_range_id_in_a_dataset_with_text_is_rejected_with_its_values(store, con, tmp_path):
    text = 'userId,movieId,tag,timestamp\n1,1,"funny, sad",1139045764\n3000000000,1,"dark, slow",1139045764\n'
    outcome = DuckDBRawLoader(con, store).load(dataset("tags"), deliver(store, tmp_path, "raw/tags/tags.csv", text))
    assert (outcome.rows_in_file, outcome.rows_loaded, outcome.rows_rejected) == (2, 1, 1)
    (reject,) = rejects(con)  # a quoted comma: the line cannot be found by splitting, the values are kept
    assert reject[1] is None and reject[2].startswith("3000000000,1,dark, slow") and "userId out of range" in reject[3]


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


# -- many objects in one batch ------------------------------------------------------------------
JULY, AUGUST, SEPTEMBER = (f"raw/ratings/month=2000-{m}/ratings.csv" for m in ("07", "08", "09"))


def load_batch(store, con, objects):
    return DuckDBRawLoader(con, store).load_objects(RATINGS, objects, lambda obj: None)


def test_two_identical_objects_in_one_batch_load_once_and_the_second_is_a_duplicate(store, con, tmp_path):
    first = deliver(store, tmp_path, JULY, GOOD_RATINGS)
    copy = deliver(store, tmp_path, "raw/ratings/month=2000-07/ratings-copy.csv", GOOD_RATINGS)
    outcomes, failures = load_batch(store, con, [first, copy])
    assert failures == []
    assert [(o.key, o.status, o.rows_loaded, o.duplicate_of) for o in outcomes] == [
        (JULY, "loaded", 3, None), (copy.key, "duplicate", 0, JULY)]
    assert len(rows(con, "ratings")) == 3
    assert con.execute("select object_key, status from raw._load_ledger order by status desc").fetchall() == [
        (JULY, "loaded"), (copy.key, "duplicate")]


COPY = "raw/ratings/month=2000-07/ratings-copy.csv"
CORRECTED = "userId,movieId,rating,timestamp\n1,1,2.0,964982703\n"


def test_a_duplicate_loads_its_own_rows_when_its_twin_is_replaced_by_other_bytes(store, con, tmp_path):
    load_batch(store, con, [deliver(store, tmp_path, JULY, GOOD_RATINGS), deliver(store, tmp_path, COPY, GOOD_RATINGS)])
    # Only the twin is delivered again; the copy's bytes were in the table only as its rows.
    outcomes, failures = load_batch(store, con, [deliver(store, tmp_path, JULY, CORRECTED)])
    assert failures == []
    assert [(o.key, o.status, o.rows_loaded, o.duplicate_of) for o in outcomes] == [
        (JULY, "loaded", 1, None), (COPY, "loaded", 3, None)]
    assert sorted(r[:4] for r in rows(con, "ratings")) == sorted(
        [(1, 1, 2.0, 964982703)] + [tuple(_typed(line)) for line in GOOD_RATINGS.splitlines()[1:]])
    assert dict(con.execute("select object_key, status from raw._load_ledger").fetchall()) == {JULY: "loaded", COPY: "loaded"}


def test_a_duplicate_stays_one_when_its_twin_is_delivered_again_with_the_same_bytes(store, con, tmp_path):
    load_batch(store, con, [deliver(store, tmp_path, JULY, GOOD_RATINGS), deliver(store, tmp_path, COPY, GOOD_RATINGS)])
    time.sleep(0.01)  # a new modification time: a new ETag for the folder store
    outcomes, failures = load_batch(store, con, [deliver(store, tmp_path, JULY, GOOD_RATINGS)])
    assert failures == []
    assert [(o.key, o.status, o.rows_loaded) for o in outcomes] == [(JULY, "unchanged", 0), (COPY, "duplicate", 0)]
    assert len(rows(con, "ratings")) == 3


def test_a_duplicate_gone_from_the_store_when_its_twin_changes_fails_by_name(store, con, tmp_path):
    load_batch(store, con, [deliver(store, tmp_path, JULY, GOOD_RATINGS), deliver(store, tmp_path, COPY, GOOD_RATINGS)])
    (Path(store.root) / store.bucket / COPY).unlink()
    outcomes, failures = load_batch(store, con, [deliver(store, tmp_path, JULY, CORRECTED)])
    assert [(o.key, o.status) for o in outcomes] == [(JULY, "loaded")]
    (failure,) = failures
    assert COPY in failure and "duplicate" in failure


def _typed(line: str) -> list:
    user, movie, rating, ts = line.split(",")
    return [int(user), int(movie), float(rating), int(ts)]


def test_a_bad_header_object_in_a_batch_fails_by_name_while_the_good_ones_load(store, con, tmp_path):
    good = deliver(store, tmp_path, JULY, GOOD_RATINGS)
    bad = deliver(store, tmp_path, AUGUST, "userId,itemId,rating,timestamp\n1,1,4.0,1\n")
    other = deliver(store, tmp_path, SEPTEMBER, "userId,movieId,rating,timestamp\n9,9,3.0,967000000\n")
    outcomes, failures = load_batch(store, con, [good, bad, other])
    assert [(o.key, o.status) for o in outcomes] == [(JULY, "loaded"), (SEPTEMBER, "loaded")]
    assert len(failures) == 1 and AUGUST in failures[0] and "wrong header" in failures[0]
    assert con.execute("select distinct _source_object from raw.ratings order by 1").fetchall() == [(JULY,), (SEPTEMBER,)]
    assert con.execute("select object_key from raw._load_ledger order by 1").fetchall() == [(JULY,), (SEPTEMBER,)]


def test_rejects_from_two_files_of_one_batch_name_their_own_object_and_line(store, con, tmp_path):
    july = deliver(store, tmp_path, JULY, GOOD_RATINGS + "1,x,4.0,964982703\n", "\r\n")  # line 5: reader reject
    august = deliver(store, tmp_path, AUGUST, "userId,movieId,rating,timestamp\n"
                                              "1,9,3.0\n"  # line 2: reader reject
                                              "2,9,3.0,967000000\n"
                                              "3,9,3.3,967000000\n")  # line 4: breaks the half-star rule
    outcomes, _ = load_batch(store, con, [july, august])
    assert [(o.rows_in_file, o.rows_loaded, o.rows_rejected) for o in outcomes] == [(4, 3, 1), (3, 1, 2)]
    assert sorted(r[:3] for r in rejects(con)) == [
        (JULY, 5, "1,x,4.0,964982703"), (AUGUST, 2, "1,9,3.0"), (AUGUST, 4, "3,9,3.3,967000000")]


def test_a_line_with_two_unreadable_fields_is_one_rejected_row(store, con, tmp_path):
    outcome = DuckDBRawLoader(con, store).load(RATINGS, deliver(store, tmp_path, JULY, GOOD_RATINGS + "1,x,y,964982703\n"))
    assert (outcome.rows_in_file, outcome.rows_loaded, outcome.rows_rejected) == (4, 3, 1)
    [(key, line, text, reason)] = rejects(con)
    assert (line, text) == (5, "1,x,y,964982703") and "movieId" in reason and "rating" in reason


def test_a_redelivered_object_in_a_batch_replaces_only_its_own_rows_and_rejects(store, con, tmp_path):
    load_batch(store, con, [deliver(store, tmp_path, JULY, GOOD_RATINGS + "1,x,1.0,1\n"),
                            deliver(store, tmp_path, AUGUST, "userId,movieId,rating,timestamp\n9,9,3.0,967000000\n9,x,1,1\n")])
    corrected = deliver(store, tmp_path, JULY, "userId,movieId,rating,timestamp\n1,1,2.0,964982703\n")
    new = deliver(store, tmp_path, SEPTEMBER, "userId,movieId,rating,timestamp\n5,5,5.0,968000000\n")
    outcomes, _ = load_batch(store, con, [corrected, new])
    assert [(o.key, o.status, o.rows_loaded) for o in outcomes] == [(JULY, "loaded", 1), (SEPTEMBER, "loaded", 1)]
    assert [r[:5] for r in rows(con, "ratings")] == [
        (1, 1, 2.0, 964982703, JULY), (5, 5, 5.0, 968000000, SEPTEMBER), (9, 9, 3.0, 967000000, AUGUST)]
    assert [r[:2] for r in rejects(con)] == [(AUGUST, 3)]


def test_a_batch_that_fails_midway_leaves_rows_rejects_and_ledger_as_they_were(store, con, tmp_path, monkeypatch):
    loader = DuckDBRawLoader(con, store)
    loader.load(RATINGS, deliver(store, tmp_path, JULY, GOOD_RATINGS))
    before = rows(con, "ratings"), rejects(con), con.execute("select * from raw._load_ledger").fetchall()

    def crash(*args):
        raise RuntimeError("killed")

    monkeypatch.setattr(loader, "_record", crash)  # after the rows and rejects went in
    batch = [deliver(store, tmp_path, JULY, GOOD_RATINGS + "1,x,1.0,1\n"),
             deliver(store, tmp_path, AUGUST, "userId,movieId,rating,timestamp\n9,9,3.0,967000000\n")]
    with pytest.raises(RuntimeError, match="killed"):
        loader.load_objects(RATINGS, batch, lambda obj: None)
    assert (rows(con, "ratings"), rejects(con), con.execute("select * from raw._load_ledger").fetchall()) == before


def test_objects_are_batched_by_total_bytes_and_an_oversized_object_is_a_batch_of_its_own():
    objects = [StoredObject(f"k{i}", "e", size, 0.0) for i, size in enumerate([4, 4, 3, 10, 1])]
    assert [[o.key for o in b] for b in _batches(objects, max_bytes=8)] == [["k0", "k1"], ["k2"], ["k3"], ["k4"]]


def test_a_load_split_into_several_batches_gives_the_same_outcomes(store, con, tmp_path, monkeypatch):
    monkeypatch.setattr(duckdb_loader, "MAX_BATCH_BYTES", 1)
    loader, batches = DuckDBRawLoader(con, store), []
    load_batch = loader._load_batch

    def counted(ds, batch, *args):
        batches.append(batch)
        return load_batch(ds, batch, *args)

    monkeypatch.setattr(loader, "_load_batch", counted)
    objects = [deliver(store, tmp_path, JULY, GOOD_RATINGS),
               deliver(store, tmp_path, AUGUST, GOOD_RATINGS),  # same bytes, in the next batch
               deliver(store, tmp_path, SEPTEMBER, "userId,movieId,rating,timestamp\n9,9,3.0,967000000\n")]
    outcomes, failures = loader.load_objects(RATINGS, objects, lambda obj: None)
    assert len(batches) == 3
    assert [(o.status, o.duplicate_of, o.rows_loaded) for o in outcomes] == [
        ("loaded", None, 3), ("duplicate", JULY, 0), ("loaded", None, 1)]
    assert len(rows(con, "ratings")) == 4


def test_a_rule_breaker_in_a_file_too_large_to_locate_keeps_its_values_without_a_line_number(store, con, tmp_path, monkeypatch):
    monkeypatch.setattr(duckdb_loader, "MAX_LOCATED_FILE_BYTES", 0)
    outcome = DuckDBRawLoader(con, store).load(RATINGS, deliver(store, tmp_path, JULY, GOOD_RATINGS + "1,9,7.0,964982703\n"))
    assert (outcome.rows_loaded, outcome.rows_rejected) == (3, 1)
    [(key, line, text, reason)] = rejects(con)
    assert (key, line, text) == (JULY, None, "1,9,7.0,964982703") and "rating" in reason


# -- records as the CSV reader sees them (RFC 4180 quoting) ------------------------------------------

TAGS = dataset("tags")
TAGS_HEADER = "userId,movieId,tag,timestamp\n"
# Malformed quoting, each read by DuckDB's reader in its own way; the count must follow it.
ODD_QUOTING = {
    "quoted-newline-and-doubled-quote": '1,1,"two\nlines",5\n2,2,"say ""hi""",6\n3,3,plain,7\n',
    "quoted-crlf-in-an-lf-file": '1,1,"a\r\nb",5\n2,2,def,6\n',
    "quote-inside-an-unquoted-field": '1,1,ab"c,5\n2,2,"x\ny",6\n3,3,ghi,7\n',
    "junk-after-a-closing-quote": '1,1,"ab"c\nd",5\n2,2,def,6\n',
    "one-space-before-a-quote": '1,1, "a\nb",5\n2,2,def,6\n',
    "two-spaces-before-a-quote": '1,1,  " ,5\n2,2,def,6\n',
    "a-quote-after-a-closed-field-and-spaces": '1,1,"ab"  "x\ny",5\n2,2,def,6\n',
    "two-unterminated-quotes": '1,1,"abc,5\n2,2,"def,6\n3,3,ghi,7\n',
    "an-unterminated-quote-in-the-middle": '1,1,abc,5\n2,2,"def,6\n3,3,ghi,7\n',
    "an-unterminated-quote-on-the-last-line": '1,1,abc,5\n2,2,def,6\n3,3,"ghi,7\n',
}


@pytest.mark.parametrize("chunk", [1, 3, 8, inspect_file_module.CHUNK], ids=lambda c: f"chunk-{c}")
@pytest.mark.parametrize("body", ODD_QUOTING.values(), ids=ODD_QUOTING.keys())
def test_records_are_counted_as_the_reader_splits_them_so_any_quoting_reconciles(store, con, tmp_path, monkeypatch, body, chunk):
    """Valid or not, quoting never makes rows in file differ from rows loaded + rejected, at
    any place of a chunk boundary (a chunk of 1 byte puts one between every two bytes)."""
    monkeypatch.setattr(inspect_file_module, "CHUNK", chunk)
    outcome = DuckDBRawLoader(con, store).load(TAGS, deliver(store, tmp_path, object_key(TAGS), TAGS_HEADER + body))
    assert outcome.rows_in_file == outcome.rows_loaded + outcome.rows_rejected
    assert inspect_file(tmp_path / "upload.csv").records == outcome.rows_in_file


def test_a_quoted_newline_and_a_doubled_quote_load_as_one_row_each(store, con, tmp_path):
    body = ODD_QUOTING["quoted-newline-and-doubled-quote"]
    outcome = DuckDBRawLoader(con, store).load(TAGS, deliver(store, tmp_path, object_key(TAGS), TAGS_HEADER + body, "\r\n"))
    assert (outcome.rows_in_file, outcome.rows_loaded, outcome.rows_rejected) == (3, 3, 0)
    assert [r[2] for r in rows(con, "tags")] == ["two\r\nlines", 'say "hi"', "plain"]  # CRLF file: the field keeps its CRLF


def test_an_unterminated_quote_makes_the_rest_of_the_file_one_rejected_row_with_the_readers_reason(store, con, tmp_path):
    """What DuckDB's reader does with a quote that is never closed: everything after it is one
    field, so one record, which it refuses. The count agrees (the file reconciles) and the
    reject says why and where, with the text it swallowed."""
    body = ODD_QUOTING["an-unterminated-quote-in-the-middle"]
    outcome = DuckDBRawLoader(con, store).load(TAGS, deliver(store, tmp_path, object_key(TAGS), TAGS_HEADER + body))
    assert (outcome.rows_in_file, outcome.rows_loaded, outcome.rows_rejected) == (2, 1, 1)
    [(key, line, text, reason)] = rejects(con)
    assert (key, line) == (object_key(TAGS), 3) and text.startswith('2,2,"def,6') and "3,3,ghi,7" in text
    assert "unterminated quote" in reason


def test_a_file_without_a_quote_character_is_counted_without_the_quote_aware_walk(tmp_path, monkeypatch):
    monkeypatch.setattr(inspect_file_module._RecordCounter, "_walk", lambda self, chunk: pytest.fail("walked a quote-free chunk"))
    monkeypatch.setattr(inspect_file_module, "CHUNK", 16)
    header, body = GOOD_RATINGS.split("\n", 1)
    path = write_csv(tmp_path / "ratings.csv", header + "\n" + body * 5)
    assert inspect_file(path).records == 15


# -- DuckDB 2.0.1: the parallel reader with store_rejects can stop early ------------------------------
# docs/failure-modes.md. On this file (1,000,000 ratings, every 10th line a cast error) DuckDB
# 2.0.1's parallel read_csv(store_rejects=true) returns 858,070 rows + 95,341 rejects and stops at
# byte 24,000,000; the loader notices (records != loaded + rejected) and reads it again serially.

MANY_LINES = 1_000_000
BAD_EVERY = 10  # line i (0-based, after the header) with i % 10 == 1 has movieId "x<i>": a cast error
RULE_BREAKERS = {5, 100_005, 500_005, 999_995}  # rating 7.0, same length as 3.5; the last beyond the stop


@pytest.fixture(scope="module")
def every_tenth_bad(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("reader") / "ratings.csv"
    with open(path, "w") as f:
        f.write("userId,movieId,rating,timestamp\n")
        for i in range(MANY_LINES):
            if i % BAD_EVERY == 1:
                f.write(f"{i},x{i},3.0,974000000\n")
            else:
                f.write(f"{i},{i % 1000},{'7.0' if i in RULE_BREAKERS else '3.5'},974000000\n")
    return path


def _plain_read(path: Path, parallel: bool = True) -> tuple[int, int]:
    """Rows + rejects of ONE read_csv with the loader's own options, as the fast path reads."""
    c = duckdb.connect()
    try:
        options = "store_rejects=true, rejects_table='e', rejects_scan='s'" + ("" if parallel else ", parallel=false")
        # Materialised, as the loader's insert does (a bare count(*) would not cast the columns).
        c.execute(f"create temp table t as select * from {duckdb_loader._reader_sql(RATINGS, RATINGS.column_names, options)}",
                  [str(path)])
        (read,) = c.execute("select count(*) from t").fetchone()
        (refused,) = c.execute("select count(distinct line) from e").fetchone()
        return read, refused
    finally:
        c.close()


@pytest.fixture(scope="module")
def plain_read_falls_short(every_tenth_bad) -> bool:
    read, refused = _plain_read(every_tenth_bad)
    return read + refused < MANY_LINES


def test_a_million_lines_with_every_tenth_bad_load_every_valid_row_and_keep_every_reject_with_its_line(
        every_tenth_bad, plain_read_falls_short, tmp_path):
    from dagster_duckdb import DuckDBResource

    from netflix_elt.resources.warehouse import DuckDBWarehouse

    store = FolderObjectStore(root=str(tmp_path / "store"))
    warehouse = DuckDBWarehouse(duckdb=DuckDBResource(database=str(tmp_path / "warehouse.duckdb")))
    obj = store.put_file(every_tenth_bad, JULY)
    started = time.perf_counter()
    [outcome], failures = warehouse.load_objects(RATINGS, [obj], store, lambda o: "2000-07-01")
    took = time.perf_counter() - started
    bad = MANY_LINES // BAD_EVERY
    assert not failures
    assert (outcome.rows_in_file, outcome.rows_loaded, outcome.rows_rejected) == (MANY_LINES, MANY_LINES - bad - 4, bad + 4)
    assert outcome.read_again == plain_read_falls_short  # the serial read only when the fast one fell short
    assert warehouse.reconcile(RATINGS)["passed"]
    with warehouse.duckdb.get_connection() as c:
        # Every refused line by number (line = i + 2: the header is line 1), with its reason.
        assert c.execute("""select count(*), count(distinct line_number), count(*) filter (where (line_number - 2) % 10 = 1
                                and reason like 'CAST: %movieId%' and raw_line = concat(line_number - 2, ',x', line_number - 2, ',3.0,974000000'))
                            from raw._load_rejects where line_number is not null and reason like 'CAST%'""").fetchone() == (bad, bad, bad)
        assert sorted(n - 2 for (n,) in c.execute("select line_number from raw._load_rejects where reason like 'rating breaks%'").fetchall()) \
            == sorted(RULE_BREAKERS)
        # Every valid row once, the last lines of the file included.
        assert c.execute("select count(*), count(distinct userId), max(userId) from raw.ratings").fetchone() \
            == (MANY_LINES - bad - 4, MANY_LINES - bad - 4, MANY_LINES - 1)
    # Idempotent: the same object again is a no-op; a corrected delivery replaces its rows exactly.
    [again], _ = warehouse.load_objects(RATINGS, [obj], store, lambda o: "2000-07-01")
    assert again.status == "unchanged"
    corrected = tmp_path / "corrected.csv"
    corrected.write_bytes(every_tenth_bad.read_bytes() + b"1000000,1,4.0,974000000\n")
    [redelivered], _ = warehouse.load_objects(RATINGS, [store.put_file(corrected, JULY)], store, lambda o: "2000-07-01")
    assert (redelivered.status, redelivered.rows_loaded, redelivered.rows_rejected) == ("loaded", MANY_LINES - bad - 3, bad + 4)
    assert warehouse.reconcile(RATINGS)["passed"] and warehouse.row_count(RATINGS) == MANY_LINES - bad - 3
    assert took < 30, f"one load of the file took {took:.1f} s"


def test_duckdb_2_0_1_parallel_store_rejects_reader_stops_early_on_this_file_and_the_serial_one_does_not(
        every_tenth_bad, plain_read_falls_short):
    """Pins the DuckDB behaviour the loader works around (duckdb_loader._read_again). On 2.0.1
    it must still fall short: if it stops doing so on the same version, this file no longer
    tests the workaround. On another DuckDB this test says, as a skip, when the fault is gone:
    the serial re-read is then idle for this file (docs/failure-modes.md says what to do)."""
    if not plain_read_falls_short:
        assert duckdb.__version__ != "2.0.1", "DuckDB 2.0.1 read the file whole: the fault's trigger has changed"
        pytest.skip(f"DuckDB {duckdb.__version__} reads this file whole with store_rejects: the fault of 2.0.1 is gone "
                    "here; the loader's serial re-read (duckdb_loader._read_again) is idle for it")
    assert _plain_read(every_tenth_bad, parallel=False) == (MANY_LINES - MANY_LINES // BAD_EVERY, MANY_LINES // BAD_EVERY)


def test_a_load_that_adds_up_after_the_fast_read_is_not_read_or_counted_again(store, con, tmp_path, monkeypatch):
    """The clean path (and one with only refused rows) costs nothing more than before."""
    monkeypatch.setattr(DuckDBRawLoader, "_complete_count", lambda *a: pytest.fail("counted a balanced object again"))
    monkeypatch.setattr(DuckDBRawLoader, "_read_again", lambda *a: pytest.fail("read a balanced object again"))
    outcome = DuckDBRawLoader(con, store).load(RATINGS, deliver(store, tmp_path, JULY, GOOD_RATINGS + "1,x,4.0,964982703\n"))
    assert (outcome.rows_loaded, outcome.rows_rejected, outcome.read_again) == (3, 1, False)


def test_a_reader_that_falls_short_is_caught_by_the_complete_count_and_the_object_is_read_again(store, con, tmp_path, monkeypatch):
    """Whatever the file: a fast read that misses rows (simulated: the parallel read's rows of
    one object dropped) is read again serially in the same transaction, with exact rejects."""
    copy_group = DuckDBRawLoader._copy_group

    def lossy(self, ds, files, tag, file_columns, paths, serial=False):
        copy_group(self, ds, files, tag, file_columns, paths, serial)
        if not serial:  # what the faulty reader does: the last rows and rejects never arrive
            self.con.execute("delete from raw.ratings where userId = 2")
            self.con.execute("delete from raw._load_rejects where line_number = 5")

    monkeypatch.setattr(DuckDBRawLoader, "_copy_group", lossy)
    text = GOOD_RATINGS + "1,x,4.0,964982703\n2,2,7.0,964982703\n"  # line 5: refused; line 6: breaks a rule
    outcome = DuckDBRawLoader(con, store).load(RATINGS, deliver(store, tmp_path, JULY, text))
    assert (outcome.rows_in_file, outcome.rows_loaded, outcome.rows_rejected, outcome.read_again) == (5, 3, 2, True)
    assert [r[1] for r in rejects(con)] == [5, 6]
    assert [r[:2] for r in rows(con, "ratings")] == [(1, 1), (1, 3), (2, 1)]
