"""The ratings extract's shortcuts change nothing that lands in the store: the constant-time source
check accepts and refuses exactly what the full inspection does, and a store that takes over a
finished file delivers it as a copy would have, under a new ETag."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import boto3
import pytest

from netflix_elt.assets.extract import _peek_file
from netflix_elt.loading.inspect_file import DeliveryError, inspect_file, validate_delivery
from netflix_elt.movielens import dataset
from netflix_elt.resources.factory import build_object_store
from netflix_elt.resources.object_store import FolderObjectStore
from netflix_elt_tests.conftest import write_csv

HEADER = "userId,movieId,rating,timestamp"
KEY = "raw/ratings/month=2000-07/ratings.csv"
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


def test_the_source_check_reads_the_ends_of_the_file_not_all_of_it(tmp_path, monkeypatch):
    path = tmp_path / "ratings.csv"
    with open(path, "wb") as f:  # 4 GiB, sparse
        f.write(f"{HEADER}\n".encode())
        f.seek(4 << 30)
        f.write(b"1,1,4.0,964982703\n")
    read = []

    class CountingFile:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def read(self, n=-1):
            data = self.f.read(n)
            read.append(len(data))
            return data

        def seek(self, *args):
            return self.f.seek(*args)

    real_open = open
    monkeypatch.setattr("builtins.open", lambda *a, **k: CountingFile(real_open(*a, **k)))
    monkeypatch.setattr("netflix_elt.assets.extract.inspect_file", lambda _: pytest.fail("took the full pass"))

    assert verdict(_peek_file(path)) == HEADER.split(",")
    assert sum(read) <= 65536 + 1


def test_a_file_moved_into_the_folder_store_is_renamed_into_place_under_a_new_etag(tmp_path):
    store = FolderObjectStore(root=str(tmp_path / "store"))
    before = store.put_file(write_csv(tmp_path / "work" / "first.csv", BODY), KEY)
    stored = tmp_path / "store" / "netflix-elt" / KEY
    again = write_csv(tmp_path / "work" / "again.csv", BODY)
    # The same bytes, size and modification time as the object it replaces: a plain rename would
    # keep the old ETag, and the loaders and the sensor would take the re-delivery for the old object.
    os.utime(again, ns=(stored.stat().st_atime_ns, stored.stat().st_mtime_ns))
    inode = again.stat().st_ino

    after = store.move_file(again, KEY)

    assert after.etag != before.etag and after.size == before.size and after.last_modified >= before.last_modified
    assert store.head(KEY) == after and [o.key for o in store.list_objects("raw/")] == [KEY]
    assert stored.read_bytes() == BODY.encode() and stored.stat().st_ino == inode  # renamed, not copied
    assert not again.exists()


def test_copied_and_moved_objects_get_the_same_file_mode(tmp_path):
    store = FolderObjectStore(root=str(tmp_path / "store"))
    private = write_csv(tmp_path / "work" / "moved.csv", BODY)
    os.chmod(private, 0o600)
    store.put_file(write_csv(tmp_path / "work" / "copied.csv", BODY), "raw/movies/movies.csv")
    store.move_file(private, KEY)
    modes = {key: (tmp_path / "store" / "netflix-elt" / key).stat().st_mode & 0o777 for key in ("raw/movies/movies.csv", KEY)}
    assert set(modes.values()) == {0o644}


def test_a_file_on_another_filesystem_is_copied_into_the_folder_store_and_then_removed(tmp_path):
    other = Path("/dev/shm")
    if not other.is_dir() or other.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a second filesystem (/dev/shm)")
    store = FolderObjectStore(root=str(tmp_path / "store"))
    with tempfile.TemporaryDirectory(dir=other) as scratch:
        moved = write_csv(Path(scratch) / "ratings.csv", BODY)
        obj = store.move_file(moved, KEY)
        assert not moved.exists()
    assert (tmp_path / "store" / "netflix-elt" / KEY).read_bytes() == BODY.encode()
    assert store.head(KEY) == obj and [o.key for o in store.list_objects("raw/")] == [KEY]


def test_a_file_moved_into_the_s3_store_is_uploaded_and_the_local_file_removed(s3_settings, tmp_path):
    store = build_object_store(s3_settings)
    moved = write_csv(tmp_path / "ratings.csv", BODY)

    obj = store.move_file(moved, KEY)

    assert not moved.exists()
    assert (obj.key, obj.size, obj.etag) == (KEY, len(BODY), hashlib.md5(BODY.encode()).hexdigest())
    s3 = boto3.client("s3", endpoint_url=s3_settings.s3_endpoint_url)
    assert s3.get_object(Bucket=s3_settings.bucket, Key=KEY)["Body"].read() == BODY.encode()
