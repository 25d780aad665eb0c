"""The folder store lists exactly like S3 does (S3 itself, on loopback, is the oracle)."""

from __future__ import annotations

import boto3
import pytest

from netflix_elt.resources.factory import build_object_store
from netflix_elt_tests.conftest import write_csv

KEYS = [
    "raw/ratings/month=1999-12/ratings.csv",
    "raw/ratings/month=2000-01/part 2.csv",
    "raw/ratings/month=2000-01/ratings.csv",
    "raw/ratings-old/ratings.csv",
    "raw/movies/movies.csv",
    "raw/movies/movies-v2.csv",
    "raw/movies/é.csv",
    "raw/tags/tags.csv",
    "raw/a.csv",
]


@pytest.fixture
def both_stores(local_settings, s3_settings):
    folder, s3 = build_object_store(local_settings), build_object_store(s3_settings)
    body = write_csv(local_settings.home / "x.csv", "x\n")
    client = boto3.client("s3", endpoint_url=s3_settings.s3_endpoint_url)
    for key in KEYS:
        folder.put_file(body, key)
        client.upload_file(str(body), s3_settings.bucket, key)
    return folder, s3


@pytest.mark.parametrize("start_after", [None, "raw/", "raw/movies/movies.csv", "raw/ratings-old/", "raw/ratings/month=2000-01/part 2.csv", "raw/z"])
@pytest.mark.parametrize("prefix", ["raw/", "raw/ratings/", "raw/movies/movies"])
def test_the_folder_store_lists_the_same_keys_in_the_same_order_as_s3(both_stores, prefix, start_after):
    folder, s3 = both_stores
    expected = [o.key for o in s3.list_objects(prefix, start_after=start_after, page_size=2)]
    assert [o.key for o in folder.list_objects(prefix, start_after=start_after)] == expected


def test_a_consumer_that_stops_early_reads_no_further(both_stores, monkeypatch):
    folder, _ = both_stores
    stats = []
    original = type(folder)._stat
    monkeypatch.setattr(type(folder), "_stat", lambda self, key, path: stats.append(key) or original(self, key, path))
    listing = folder.list_objects("raw/")
    first_two = [next(listing).key, next(listing).key]
    assert stats == first_two
