"""What the extract last wrote, and the rule that decides whether it writes an object again.

The extract plays the upstream system that delivers files into ``raw/``; other deliveries land
there too (``netflix-elt deliver``, a person with ``aws s3 cp``, the real upstream in prod).
Two promises follow, on the folder store and on S3 alike:

- **idempotent**: bytes that are already the object are never written again, so the object keeps
  its ETag and a sensor watching ``raw/`` sees nothing new after a second run on unchanged data;
- **a delivery wins over the extract**: an object that someone else wrote since the extract last
  wrote it is kept, not overwritten, unless the run asks for it (``replace_deliveries``).

The rule, for each object key the extract would deliver (a file, or a month of ratings):

1. no object at the key: write it;
2. the object's current ETag is the one the extract recorded when it last wrote the key (the
   object is the extract's own): the source's bytes unchanged (same size, then same content
   hash) -> nothing is written; changed -> written (the source moved on, and so does the object);
3. any other ETag (someone else delivered it, or the extract has no record of the key): the
   source's bytes equal to the object's (same size, then same content hash) -> the object is
   adopted: recorded as the extract's own, not written; different -> the delivery is kept, with
   a warning and the key in the ``kept_deliveries`` metadata, unless the run's config says
   ``replace_deliveries: true``, which writes the source over it (``replaced_deliveries``).

Every write is recorded (key -> ETag, content hash, size), and so is an adoption. A source that
fails the extract's checks is refused before anything is written (see ``extract``).

Where the record lives: in the store itself, one small JSON object per dataset at
``_netflix_elt/extract/<dataset>.json``, written through the same ``ObjectStore`` interface as
the data. So it works unchanged on the folder store and on S3; it travels with the bucket (a
second machine, or a wiped ``NETFLIX_ELT_HOME/work``, still knows which objects the extract
wrote: a record in the scratch folder, as before, would turn every object into "someone
else's" the day the folder is cleaned); and it sits outside ``raw/``, the only prefix the
loaders and the sensor list, so it is never taken for a delivery. Dagster's own metadata was
not an option: it lives in one instance's storage (not shared by every writer of the bucket)
and is truncated for 270 months. The content hash is the loaders' (``inspect_file``'s blake2b),
and S3 objects the extract writes carry it in their user metadata too, so adopting an S3 object
after a lost record reads a HEAD, not the object.

A record is read once per run and written once at its end (also when the run fails midway, for
what it did write), merged into the record as it is then, so two runs on different months
cannot erase each other's entries except in the instant between that read and write. A lost or
unreadable record is not an error: every object then goes through rule 3, where identical bytes
are adopted and anything else is kept as a delivery.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from netflix_elt.resources.object_store import ObjectStore, StoredObject

STATE_PREFIX = "_netflix_elt/extract/"
STATE_VERSION = 1
CHUNK = 8 << 20

# Decisions of the rule.
ABSENT = "written"  # no object: written
UNCHANGED = "unchanged"  # the extract's own object, the same bytes: not written
CHANGED = "written"  # the extract's own object, other bytes: written
ADOPTED = "adopted"  # someone else's object (or unrecorded), the same bytes: recorded, not written
KEPT = "kept_delivery"  # someone else's object, other bytes: kept
REPLACED = "replaced_delivery"  # someone else's object, other bytes, replace_deliveries: written

WRITES = (ABSENT, CHANGED, REPLACED)


def state_key(dataset_name: str) -> str:
    return f"{STATE_PREFIX}{dataset_name}.json"


def hash_file(path: Path) -> str:
    """The content hash of a file: blake2b with a 16-byte digest, hex, as ``inspect_file`` computes
    it (the loaders' hash). hashlib releases the GIL while it hashes, so threads run in parallel."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def hash_files(paths: Iterable[Path], workers: int | None = None) -> list[str]:
    paths = list(paths)
    if len(paths) <= 1:
        return [hash_file(p) for p in paths]
    with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1, len(paths))) as pool:
        return list(pool.map(hash_file, paths))


@dataclass(frozen=True)
class Record:
    etag: str
    content_hash: str
    size: int

    def as_json(self) -> dict:
        return {"etag": self.etag, "content_hash": self.content_hash, "size": self.size}


def find(store: ObjectStore, key: str) -> StoredObject | None:
    """The object at ``key``, or None if there is none. Through a listing, which says "absent" as
    an answer; a HEAD says it as an error that the stores report as transient (and so retried)."""
    return next((o for o in store.list_objects(key, page_size=10) if o.key == key), None)


def load_state(store: ObjectStore, dataset_name: str, warn: Callable[[str], None] | None = None) -> dict[str, Record]:
    key = state_key(dataset_name)
    if find(store, key) is None:
        return {}
    with store.local_copy(key) as path:
        text = path.read_text()
    try:
        data = json.loads(text)
        return {k: Record(v["etag"], v["content_hash"], int(v["size"])) for k, v in data["objects"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        if warn:
            warn(f"{store.describe(key)} is unreadable ({type(exc).__name__}); every object is treated as "
                 "unrecorded: identical ones are adopted, others kept as deliveries")
        return {}


def save_state(store: ObjectStore, dataset_name: str, updates: dict[str, Record], work_dir: Path) -> None:
    """Merge ``updates`` into the record as it is now (re-read, so a concurrent run's entries for
    other keys survive) and write it."""
    if not updates:
        return
    merged = {k: r.as_json() for k, r in load_state(store, dataset_name).items()}
    merged.update({k: r.as_json() for k, r in updates.items()})
    body = json.dumps({"version": STATE_VERSION, "dataset": dataset_name, "objects": dict(sorted(merged.items()))},
                      indent=1)
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="extract-state-", suffix=".json", dir=work_dir)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(body)
        store.move_file(Path(tmp), state_key(dataset_name))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def object_hash(store: ObjectStore, key: str) -> str:
    """The content hash of a stored object: the one S3 keeps in its metadata if the extract wrote
    it, otherwise the bytes are read (the folder store's in place; S3's downloaded)."""
    stored = store.stored_content_hash(key)
    if stored:
        return stored
    with store.local_copy(key) as path:
        return hash_file(path)


def decide(current: StoredObject | None, record: Record | None, size: int, content_hash: Callable[[], str],
           current_hash: Callable[[], str], replace_deliveries: bool) -> str:
    """The rule (module docstring) for one key. The hashes are computed only when the sizes leave
    the question open: ``content_hash()`` for the source's bytes, ``current_hash()`` for the
    object's (read only for an object that is not the extract's own)."""
    if current is None:
        return ABSENT
    if record is not None and record.etag == current.etag:
        same = current.size == size and record.size == size and record.content_hash == content_hash()
        return UNCHANGED if same else CHANGED
    if current.size == size and current_hash() == content_hash():
        return ADOPTED
    return REPLACED if replace_deliveries else KEPT
