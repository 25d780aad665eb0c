"""Object stores: a folder laid out like the bucket (default) or S3 (through dagster-aws,
in ``s3_object_store``, imported only when the S3 store is configured: boto3 alone takes
~0.75 s to import, in every process that loads the code location).

Both expose the same small interface, so the extract assets, the loaders and the sensor
never know which one they talk to:

- ``list_objects(prefix, start_after)`` yields objects in key order, page by page, starting
  strictly after a key, so a caller with a cursor never rescans what it has seen;
- ``head(key)`` / ``put_file(path, key)`` / ``local_copy(key)``;
- ``move_file(path, key)``: ``put_file`` for a local file the caller no longer needs, which
  the folder store renames into place instead of copying (S3 uploads it, then it is deleted).
- ``put_file`` / ``move_file`` take an optional ``content_hash`` of the file (the extract's);
  S3 keeps it in the object's user metadata, where ``stored_content_hash(key)`` reads it back
  without downloading the object. The folder store keeps none (reading it locally is cheap).

Writes are atomic in both: S3 PUTs are, and the folder store writes to a hidden temporary
name and renames, so nothing ever reads a half-written object. Temporary names are never
listed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator

import dagster as dg

TEMP_PREFIX = ".tmp-"  # folder-store temporary names; also how S3 uploaders often mark them
# The S3 user-metadata field (x-amz-meta-...) with the extract's hash of an object's bytes:
# blake2b, 16-byte digest, hex, as ``inspect_file`` computes ``content_hash``.
CONTENT_HASH_METADATA = "netflix-elt-blake2b"


@dataclass(frozen=True)
class StoredObject:
    key: str
    etag: str
    size: int
    last_modified: float  # epoch seconds

    def as_metadata(self) -> dict:
        return {"key": self.key, "etag": self.etag, "bytes": self.size}


class ObjectStoreError(RuntimeError):
    """The store could not be read or written. Messages name the place, never a credential.

    ``transient`` says whether trying again can help (a timeout, a refused connection, a 5xx)
    or not (no such bucket, access denied, bad credentials); the assets retry only the former.
    """

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


# S3 error codes that no retry can fix.
PERMANENT_S3_CODES = frozenset({
    "NoSuchBucket", "403", "AccessDenied", "InvalidAccessKeyId",
    "SignatureDoesNotMatch", "InvalidBucketName", "AllAccessDisabled", "ExpiredToken",
})


class ObjectStore(dg.ConfigurableResource, ABC):
    """What every store offers. Keys are bucket-relative, e.g. ``raw/movies/movies.csv``."""

    # Whether put_file keeps the content hash it is given (so a writer computes it first).
    keeps_content_hash: ClassVar[bool] = False

    @abstractmethod
    def describe(self, key: str = "") -> str:
        """Human-readable location for messages, e.g. ``s3://bucket/key (endpoint ...)``."""

    @abstractmethod
    def list_objects(self, prefix: str, start_after: str | None = None, page_size: int = 1000) -> Iterator[StoredObject]:
        """Objects under ``prefix`` with key > ``start_after``, in key order."""

    @abstractmethod
    def head(self, key: str) -> StoredObject: ...

    @abstractmethod
    def put_file(self, path: Path, key: str, content_hash: str | None = None) -> StoredObject:
        """Upload ``path`` as ``key``; a store that can keep ``content_hash`` with the object does."""

    def move_file(self, path: Path, key: str, content_hash: str | None = None) -> StoredObject:
        """``put_file`` for a local file the caller no longer needs: the file is gone afterwards,
        and a store that can take it over without copying it (the folder store) does."""
        obj = self.put_file(path, key, content_hash)
        path.unlink()
        return obj

    def stored_content_hash(self, key: str) -> str | None:
        """The content hash given to ``put_file`` when this object was written, if the store kept
        one (S3: user metadata); None otherwise, and the caller reads the bytes."""
        return None

    @abstractmethod
    def local_copy(self, key: str) -> contextlib.AbstractContextManager[Path]:
        """A local file with the object's bytes for the duration of the ``with`` block."""


OBJECT_MODE = 0o644  # every object file, copied in or moved in


class FolderObjectStore(ObjectStore):
    """A folder that mirrors the bucket: ``<root>/<bucket>/<key>``.

    The ETag is derived from size and modification time (like nginx's), because hashing
    every file on every listing would make a sensor tick over 100,000 objects slow. Loaders
    hash the content when they read it, so a re-delivery of identical bytes is still a no-op.
    """

    root: str
    bucket: str = "netflix-elt"

    @property
    def _base(self) -> Path:
        return Path(self.root) / self.bucket

    def describe(self, key: str = "") -> str:
        return f"folder store {self._base / key}"

    def _path(self, key: str) -> Path:
        path = (self._base / key).resolve()
        if self._base.resolve() not in path.parents and path != self._base.resolve():
            raise ObjectStoreError(f"key {key!r} escapes the store root {self._base}")
        return path

    def _stat(self, key: str, path: Path) -> StoredObject:
        st = path.stat()
        return StoredObject(key=key, etag=f"{st.st_mtime_ns:x}-{st.st_size:x}", size=st.st_size, last_modified=st.st_mtime)

    def list_objects(self, prefix: str, start_after: str | None = None, page_size: int = 1000) -> Iterator[StoredObject]:
        """Keys in S3's order, walking only what can come after ``start_after``.

        Folders are visited in key order (a folder ``x`` sorts as ``x/``, so ``x-y`` comes
        first, as in S3), folders wholly before ``start_after`` are skipped without being read,
        and files are stat'ed only when yielded: a caller that stops after N objects pays for
        about N objects, not for the whole tree.
        """
        base = self._base
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = base / folder if folder else base
        if not start.is_dir():
            return
        yield from self._walk(start, folder + "/" if folder else "", prefix, start_after)

    def _walk(self, path: Path, key_prefix: str, prefix: str, start_after: str | None) -> Iterator[StoredObject]:
        try:
            entries = list(os.scandir(path))
        except FileNotFoundError:
            return
        keyed = sorted(
            ((key_prefix + e.name + ("/" if e.is_dir(follow_symlinks=False) else ""), e) for e in entries
             if not e.name.startswith(TEMP_PREFIX)),
            key=lambda item: item[0],
        )
        for key, entry in keyed:
            if key.endswith("/"):
                # Skip a folder whose keys all sort before start_after, or outside the prefix.
                if start_after and start_after > key and not start_after.startswith(key):
                    continue
                if not (key.startswith(prefix) or prefix.startswith(key)):
                    continue
                yield from self._walk(Path(entry.path), key, prefix, start_after)
            elif key.startswith(prefix) and (start_after is None or key > start_after):
                try:
                    yield self._stat(key, Path(entry.path))
                except FileNotFoundError:  # deleted between listing and stat: not there any more
                    continue

    def head(self, key: str) -> StoredObject:
        path = self._path(key)
        try:
            return self._stat(key, path)
        except FileNotFoundError:
            # Gone between listing and reading: a retry lists again and no longer sees it.
            raise ObjectStoreError(f"object not found: {self.describe(key)}", transient=True) from None

    def put_file(self, path: Path, key: str, content_hash: str | None = None) -> StoredObject:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=dest.parent)
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)  # copied inside the kernel (sendfile) where it can be
            os.chmod(tmp, OBJECT_MODE)  # mkstemp's 0600 would differ from moved-in objects
            os.replace(tmp, dest)  # atomic: readers see the old or the new object, never half
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return self._stat(key, dest)

    def move_file(self, path: Path, key: str, content_hash: str | None = None) -> StoredObject:
        """Rename the file into place: atomic like ``put_file``, without copying a byte (the
        extract's scratch folder and the store are both under NETFLIX_ELT_HOME). Across
        filesystems it is copied instead.

        The ETag comes from the modification time, so the file is first stamped with the time of
        delivery, as a copy would be, and never with the time of the previous object at that key:
        a re-delivery is always a new ETag, and the object appears with its final ETag."""
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        now = time.time_ns()
        with contextlib.suppress(FileNotFoundError):
            now = max(now, dest.stat().st_mtime_ns + 1)
        os.utime(path, ns=(now, now))
        os.chmod(path, OBJECT_MODE)
        try:
            os.replace(path, dest)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            return super().move_file(path, key, content_hash)
        return self._stat(key, dest)

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        path = self._path(key)
        if not path.exists():
            raise ObjectStoreError(f"object not found: {self.describe(key)}", transient=True)
        yield path  # already local: no copy
