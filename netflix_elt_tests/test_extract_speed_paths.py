"""The ratings extract's shortcuts change nothing that lands in the store: the constant-time source
check accepts and refuses exactly what the full inspection does."""

from __future__ import annotations

import time

import pytest

from netflix_elt.assets.extract import _peek_file
from netflix_elt.loading.inspect_file import DeliveryError, inspect_file, validate_delivery
from netflix_elt.movielens import dataset
from netflix_elt_tests.conftest import write_csv

HEADER = "userId,movieId,rating,timestamp"
BODY = f"{HEADER}\n1,1,4.0,964982703\n2,2,3.5,964982704\n"

SOURCES = {
    "good": BODY,
    "crlf, a byte order mark and a blank last line": f"\ufeff{HEADER}\r\n1,1,4.0,964982703\r\n\r\n",
    "reordered columns and an extra one": "timestamp,extra,rating,movieId,userId\n964982703,x,4.0,1,1\n",
    "only the header": f"{HEADER}\n",
    "empty": "",
    "a renamed column": "user,movieId,rating,timestamp\n1,1,4.0,964982703\n",
    "a repeated column": f"{HEADER},rating\n1,1,4.0,964982703,4.0\n",
    "truncated": f"{HEADER}\n1,1,4.0,964982703\n2,2,3.",
    "truncated in the header": "userId,movieId,rat",
    "a header past the first 64 KiB": f"{HEADER},{'x' * 70_000}\n1,1,4.0,964982703,y\n",
}


def verdict(facts) -> list[str] | str:
    try:
        return validate_delivery(facts, dataset("ratings"), where="source file ratings.csv")
    except DeliveryError as exc:
        return str(exc)


@pytest.mark.parametrize("name", SOURCES)
def test_the_constant_time_source_check_accepts_and_refuses_exactly_as_the_full_inspection(tmp_path, name):
    path = write_csv(tmp_path / "ratings.csv", SOURCES[name])
    assert verdict(_peek_file(path)) == verdict(inspect_file(path))


def test_the_source_check_reads_the_ends_of_the_file_not_all_of_it(tmp_path):
    path = tmp_path / "ratings.csv"
    with open(path, "wb") as f:  # 4 GiB, sparse: reading it all would take seconds
        f.write(f"{HEADER}\n".encode())
        f.seek(4 << 30)
        f.write(b"1,1,4.0,964982703\n")
    started = time.perf_counter()
    assert verdict(_peek_file(path)) == HEADER.split(",")
    assert time.perf_counter() - started < 0.5

