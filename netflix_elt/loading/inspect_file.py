"""One streaming pass over a delivered file, before the warehouse sees it.

It yields what the loader needs to decide and to reconcile, at disk speed and in constant
memory: a content hash (so identical bytes re-delivered under a new ETag are a no-op), the
number of data lines (the independent count that ``rows in file = loaded + rejected`` is
checked against), the header, and whether the file ends mid-line (truncated).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from netflix_elt.movielens import Dataset

CHUNK = 8 << 20


@dataclass(frozen=True)
class FileFacts:
    size: int
    content_hash: str
    header: str
    data_lines: int
    ends_with_newline: bool


class DeliveryError(ValueError):
    """The delivered object as a whole cannot be loaded; the message names it and why."""


def inspect_file(path: Path) -> FileFacts:
    digest = hashlib.blake2b(digest_size=16)
    newlines = 0
    size = 0
    first = b""
    tail = b""  # the last bytes seen: for truncation and trailing blank lines
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            if len(first) < 65536 and b"\n" not in first:
                first += chunk[:65536]
            digest.update(chunk)
            newlines += chunk.count(b"\n")
            size += len(chunk)
            tail = (tail + chunk[-4096:])[-4096:]
    header = header_of(first)
    ends = tail.endswith(b"\n")
    # Blank lines at the very end (an extra CRLF) are not rows; the reader skips them too.
    stripped = tail.rstrip(b"\r\n")
    trailing_blank = tail[len(stripped):].count(b"\n") - 1 if ends and stripped else 0
    lines = newlines if ends else newlines + 1  # a last line without newline is still a line
    data_lines = max(lines - 1 - max(trailing_blank, 0), 0) if size else 0
    return FileFacts(size, digest.hexdigest(), header, data_lines, ends)


def header_of(head: bytes) -> str:
    """The header line from a file's first bytes: without CR/LF, byte order mark or padding."""
    return head.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8-sig", errors="replace").strip()


def _header_names(header: str) -> list[str]:
    return [c.strip().strip('"').strip() for c in header.split(",")]


def validate_delivery(facts: FileFacts, dataset: Dataset, where: str) -> list[str]:
    """Refuse whole-file problems with a message that says what and where.

    Returns the file's columns in file order. Schema drift is mapped by header name where
    that is safe: reordered columns load by name, and columns the catalogue does not know are
    ignored (the caller reports them). A missing or renamed column fails the load naming the
    columns, so a value is never shifted silently into the wrong column.
    """
    if facts.size == 0:
        raise DeliveryError(f"{where}: the object is empty (0 bytes); expected a CSV with header {dataset.header!r}")
    got = _header_names(facts.header)
    missing = [c for c in dataset.column_names if c not in got]
    duplicated = sorted({c for c in got if got.count(c) > 1})
    if missing or duplicated or "" in got:
        extra = [c for c in got if c not in dataset.column_names]
        detail = []
        if missing:
            detail.append(f"missing {missing}")
        if extra:
            detail.append(f"unexpected {extra}")
        if duplicated:
            detail.append(f"repeated {duplicated}")
        if "" in got:
            detail.append("an empty column name")
        raise DeliveryError(
            f"{where}: wrong header for {dataset.name}: expected {dataset.header!r}, got {facts.header!r} ({'; '.join(detail)})"
        )
    if not facts.ends_with_newline:
        raise DeliveryError(
            f"{where}: the object looks truncated: it does not end with a newline "
            f"({facts.size} bytes, {facts.data_lines} data lines); re-deliver the complete file"
        )
    return got
