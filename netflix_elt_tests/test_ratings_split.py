"""The ratings extract's split into monthly objects: exact bytes, quarantine, quoting, metadata."""

from __future__ import annotations

import csv
import io
import random
import time
from datetime import datetime, timezone

import dagster as dg
import pytest

from netflix_elt.assets import extract
from netflix_elt.assets.extract import split_ratings_by_month
from netflix_elt.partitions import ratings_monthly
from netflix_elt.settings import Settings
from netflix_elt_tests.conftest import materialize, write_csv

HEADER = "userId,movieId,rating,timestamp"
BOUNDS = (datetime(1995, 1, 1, tzinfo=timezone.utc), datetime(2030, 1, 1, tzinfo=timezone.utc))
ALL_MONTHS = (ratings_monthly.get_first_partition_key(), ratings_monthly.get_last_partition_key())


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):
    """A few rows per Arrow batch, so a month's rows arrive over many batches and runs."""
    monkeypatch.setattr(extract, "SPLIT_BATCH_ROWS", 7)


def month_of(line: str) -> str:
    return time.strftime("%Y-%m", time.gmtime(int(line.rsplit(",", 1)[1])))


def split(tmp_path, text: str, window=BOUNDS, file_columns=None) -> dict[str, int]:
    src = write_csv(tmp_path / "ratings.csv", text)
    return split_ratings_by_month(src, tmp_path / "out", window, BOUNDS, file_columns)


def read(tmp_path, stem: str) -> str:
    return (tmp_path / "out" / f"{stem}.csv").read_bytes().decode()  # no newline translation: exact bytes


def test_each_month_file_is_the_catalogue_header_then_that_months_source_lines_byte_for_byte(tmp_path):
    rng = random.Random(7)
    lines = [
        f"{rng.choice(['1', '007', '42'])},{rng.randint(1, 9999)},{rng.choice(['4.0', '4.50', '0.5', ' 3'])},"
        f"{rng.randint(820454400, 1600000000)}"
        for _ in range(500)
    ]
    counts = split(tmp_path, HEADER + "\n" + "\n".join(lines) + "\n")
    expected: dict[str, list[str]] = {}
    for line in lines:
        expected.setdefault(month_of(line), []).append(line)
    assert counts == {month: len(rows) for month, rows in expected.items()}
    for month, rows in expected.items():
        assert read(tmp_path, month) == HEADER + "\n" + "".join(f"{r}\n" for r in rows)
    assert sorted(p.stem for p in (tmp_path / "out").iterdir()) == sorted(expected)


def test_source_columns_are_read_in_the_source_order_and_written_in_the_catalogue_order(tmp_path):
    text = "timestamp,rating,extra,userId,movieId\n964982703,4.0,x,1,10\n978307199,2.5,y,2,20\n"
    counts = split(tmp_path, text, file_columns=["timestamp", "rating", "extra", "userId", "movieId"])
    assert counts == {"2000-07": 1, "2000-12": 1}
    assert read(tmp_path, "2000-07") == f"{HEADER}\n1,10,4.0,964982703\n"
    assert read(tmp_path, "2000-12") == f"{HEADER}\n2,20,2.5,978307199\n"


def test_rows_without_a_valid_timestamp_or_outside_the_bounds_are_quarantined_and_others_outside_the_window_skipped(
    tmp_path,
):
    text = (
        f"{HEADER}\n"
        "1,1,4.0,964982703\n"  # 2000-07: in the window
        "2,2,4.0,\n"  # no timestamp
        "3,3,4.0,soon\n"  # not a number
        "4,4,4.0,700000000\n"  # 1992: before the first partition
        "5,5,4.0,4102444800\n"  # 2100: after the last partition
        "6,6,4.0,978307200\n"  # 2001-01: a placeable month outside this run's window
        "7,7,4.0,962409600\n"  # 2000-07-01 00:00:00: the window's first second
    )
    window = (datetime(2000, 7, 1, tzinfo=timezone.utc), datetime(2000, 8, 1, tzinfo=timezone.utc))
    counts = split(tmp_path, text, window)
    assert counts == {"2000-07": 2, "_invalid": 2, "_before": 1, "_after": 1}
    assert read(tmp_path, "2000-07") == f"{HEADER}\n1,1,4.0,964982703\n7,7,4.0,962409600\n"
    assert read(tmp_path, "_invalid") == f"{HEADER}\n2,2,4.0,\n3,3,4.0,soon\n"
    assert read(tmp_path, "_before") == f"{HEADER}\n4,4,4.0,700000000\n"
    assert read(tmp_path, "_after") == f"{HEADER}\n5,5,4.0,4102444800\n"


def test_lines_the_csv_reader_rejects_are_quarantined_as_malformed_with_their_line_number(tmp_path):
    text = f"{HEADER}\n1,1,4.0,964982703\n2,2,4.0,964982703,surplus\n3,3\n4,4,4.0,964982704\n"
    counts = split(tmp_path, text)
    assert read(tmp_path, "2000-07") == f"{HEADER}\n1,1,4.0,964982703\n4,4,4.0,964982704\n"
    malformed = list(csv.reader(io.StringIO(read(tmp_path, "_malformed"))))
    assert malformed[0] == ["line", "raw_line", "error"]
    # DuckDB reports one error per missing column: the short line is still listed (and counted) once.
    assert [(row[0], row[1]) for row in malformed[1:]] == [("3", "2,2,4.0,964982703,surplus"), ("4", "3,3")]
    assert counts == {"2000-07": 2, "_malformed": 2}


def test_a_value_that_needs_quoting_is_quoted_so_no_row_shifts_or_splits_and_other_months_stay_unquoted(tmp_path):
    text = (
        f"{HEADER}\n"
        '1,1,"4,5",964982703\n'  # a comma
        '2,"say ""hi""",3.0,964982704\n'  # a quote
        '3,"two\nlines",1.0,964982705\n'  # a line feed
        '4,"carriage\rreturn",1.0,964982706\n'  # a carriage return
        "5,5,5.0,964982707\n"
        "6,6,2.0,978307199\n"  # 2000-12: nothing to quote there
    )
    counts = split(tmp_path, text)
    assert counts == {"2000-07": 5, "2000-12": 1}
    month = read(tmp_path, "2000-07")
    assert month.startswith(HEADER + "\n")
    with open(tmp_path / "out" / "2000-07.csv", newline="") as f:
        assert list(csv.reader(f))[1:] == [
            ["1", "1", "4,5", "964982703"],
            ["2", 'say "hi"', "3.0", "964982704"],
            ["3", "two\nlines", "1.0", "964982705"],
            ["4", "carriage\rreturn", "1.0", "964982706"],
            ["5", "5", "5.0", "964982707"],
        ]
    assert read(tmp_path, "2000-12") == f"{HEADER}\n6,6,2.0,978307199\n"


def test_an_empty_source_writes_no_month(tmp_path):
    assert split(tmp_path, HEADER + "\n") == {}


def test_the_asset_delivers_the_split_months_and_reports_rows_bytes_and_quarantine(tmp_path):
    source = tmp_path / "source"
    lines = ["1,1,4.0,964982703", "2,2,4.0,", "3,3,3.0,978307199", "4,4,4.0,964982704", "5,5,5.0,964982705,surplus"]
    write_csv(source / "ratings.csv", HEADER + "\n" + "\n".join(lines) + "\n")
    settings = Settings(home=tmp_path / "home", source=source, synthetic_genome_tags=8)
    result = materialize(settings, dg.AssetSelection.keys(["s3", "ratings"]), ALL_MONTHS)
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    keys = ["raw/ratings/month=2000-07/ratings.csv", "raw/ratings/month=2000-12/ratings.csv"]
    stored = {key: settings.store_root / settings.bucket / key for key in keys}
    assert meta["keys"].value == keys and meta["objects"].value == 2 and set(meta["etags"].value) == set(keys)
    assert (meta["rows"].value, meta["quarantined_rows"].value) == (3, 2)
    assert meta["bytes"].value == sum(p.stat().st_size for p in stored.values())
    assert stored[keys[0]].read_text() == f"{HEADER}\n1,1,4.0,964982703\n4,4,4.0,964982704\n"
    quarantine = settings.quarantine_dir / "ratings"
    assert sorted(p.name for p in quarantine.iterdir()) == ["invalid.csv", "malformed.csv"]
    assert (quarantine / "invalid.csv").read_text() == f"{HEADER}\n2,2,4.0,\n"
    st = (source / "ratings.csv").stat()
    assert meta["source_signature"].value == f"{source / 'ratings.csv'}|{st.st_size}|{st.st_mtime_ns}"
    assert not list(settings.work_dir.glob("split-*"))  # the month files were moved, the scratch folder removed


def test_delivering_the_same_source_again_writes_no_month_and_every_month_keeps_its_etag(tmp_path):
    source = tmp_path / "source"
    write_csv(source / "ratings.csv", f"{HEADER}\n1,1,4.0,964982703\n3,3,3.0,978307199\n4,4,4.0,964982704\n")
    settings = Settings(home=tmp_path / "home", source=source, synthetic_genome_tags=8)
    stored = settings.store_root / settings.bucket / "raw" / "ratings"

    def deliver() -> tuple[dict, dict]:
        result = materialize(settings, dg.AssetSelection.keys(["s3", "ratings"]), ALL_MONTHS)
        etags = result.get_asset_materialization_events()[0].materialization.metadata["etags"].value
        return etags, {p.parent.name: p.read_bytes() for p in stored.glob("*/ratings.csv")}

    first_etags, first_bytes = deliver()
    again_etags, again_bytes = deliver()
    assert again_bytes == first_bytes and len(first_bytes) == 2
    assert again_etags == first_etags


def pyarrow_split(src, batch_rows: int) -> dict[str, bytes]:
    """The split as it was written with pyarrow's CSV writer, as the reference for the bytes: the
    same DuckDB reader and batches, each batch's rows sorted by month and written run by run, a run
    unquoted or, if pyarrow refuses that (a value needs quoting), with its strings quoted."""
    import duckdb
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    out: dict[str, bytes] = {}
    columns = ", ".join(f"'{c}': 'VARCHAR'" for c in HEADER.split(","))
    with duckdb.connect() as con:
        batches = con.sql(
            f"""select * exclude (_ts), coalesce(strftime(make_timestamp(_ts * 1000000), '%Y-%m'), '_invalid') as _month
                from (select *, try_cast("timestamp" as bigint) as _ts
                      from read_csv(?, header=true, auto_detect=false, columns={{{columns}}},
                                    delim=',', quote='"', escape='"', store_rejects=true))""",
            params=[str(src)],
        ).to_arrow_reader(batch_rows)
        for batch in batches:
            batch = batch.take(pc.sort_indices(batch.column("_month")))
            runs = pc.run_end_encode(batch.column("_month"))
            start = 0
            for end, month in zip(runs.run_ends.to_pylist(), runs.values.to_pylist()):
                rows, sink = batch.drop_columns(["_month"]).slice(start, end - start), pa.BufferOutputStream()
                try:
                    pacsv.write_csv(rows, sink, pacsv.WriteOptions(include_header=False, quoting_style="none"))
                except pa.ArrowInvalid:
                    sink = pa.BufferOutputStream()
                    pacsv.write_csv(rows, sink, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
                out[month] = out.get(month, f"{HEADER}\n".encode()) + sink.getvalue().to_pybytes()
                start = end
    return out


@pytest.mark.parametrize("batch_rows", [7, 64])
def test_month_files_are_byte_for_byte_what_pyarrows_csv_writer_wrote_even_for_values_that_need_quoting(
    tmp_path, monkeypatch, batch_rows
):
    monkeypatch.setattr(extract, "SPLIT_BATCH_ROWS", batch_rows)
    rng = random.Random(11)
    values = ["1", "007", " 3", "4.5", "", '""', '"a,b"', '"say ""hi"""', '"two\nlines"', '"cr\rlf\r\n"', '","',
              '""""', '"é, ü"', "x y", "-"]
    times = ["964982703", "964982704", "978307199", "981000000", "", "soon"]  # three months, and invalid
    lines = [
        ",".join(rng.choice(values) if rng.random() < 0.1 else str(rng.randint(1, 999)) for _ in range(3))
        + "," + rng.choice(times)
        for _ in range(400)
    ]
    src = write_csv(tmp_path / "ratings.csv", HEADER + "\n" + "\n".join(lines) + "\n")
    counts = split_ratings_by_month(src, tmp_path / "out", BOUNDS, BOUNDS)
    written = {p.stem: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    expected = pyarrow_split(src, batch_rows)
    assert sorted(written) == sorted(expected) == sorted(counts) == ["2000-07", "2000-12", "2001-02", "_invalid"]
    assert any(b'"' in body for body in written.values())  # some runs needed quoting, others did not
    assert all(written[month] == expected[month] for month in expected)
