"""One streaming pass over a delivered file, before the warehouse sees it.

It yields what the loader needs to decide and to reconcile, at disk speed and in constant
memory: a content hash (so identical bytes re-delivered under a new ETag are a no-op), the
number of records (the independent count that ``rows in file = loaded + rejected`` is
checked against), the header, and whether the file ends mid-line (truncated).

Records are counted as DuckDB's CSV reader (``CSV_READ_OPTIONS``) splits them, which is RFC
4180: a newline inside a quoted field is part of the field, and a doubled quote inside one is
a quote. A line of a MovieLens file is therefore not always a record: a tag may hold a quoted
newline. Quoting that RFC 4180 does not allow is counted the way the reader reads it, so that
such a record reconciles as a reject with the reader's reason instead of breaking the count:

- a quote opens a quoted field only at the start of a field (or after one space there, as
  the reader allows); one inside an unquoted field (``ab"c``) is a literal character;
- a quote inside a quoted field closes it unless another quote follows (a doubled quote),
  spaces allowed in between as the reader allows; anything else up to the next comma or
  newline is junk in the same record (the reader rejects the record);
- a quote never closed runs to the end of the file: the rest is ONE record (the reader
  rejects it as "Value with unterminated quote found").

Speed: a chunk without a quote character, outside a quoted field (all of ratings and
genome-scores), is counted with one ``bytes.count`` as before; only chunks holding a quote
are walked, quote by quote.
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
    records: int  # data records (the header and trailing blank lines not counted)
    ends_with_newline: bool


class DeliveryError(ValueError):
    """The delivered object as a whole cannot be loaded; the message names it and why."""


def inspect_file(path: Path) -> FileFacts:
    digest = hashlib.blake2b(digest_size=16)
    records = _RecordCounter()
    size = 0
    first = b""
    tail = b""  # the last bytes seen: for truncation and trailing blank lines
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            if len(first) < 65536 and b"\n" not in first:
                first += chunk[:65536]
            digest.update(chunk)
            records.feed(chunk)
            size += len(chunk)
            tail = (tail + chunk[-4096:])[-4096:]
    header = header_of(first)
    ends = tail.endswith(b"\n")
    if records.in_quotes:  # a quote never closed: the rest of the file is one record
        count = records.newlines + 1
    else:
        # Blank lines at the very end (an extra CRLF) are not rows; the reader skips them too.
        stripped = tail.rstrip(b"\r\n")
        trailing_blank = tail[len(stripped):].count(b"\n") - 1 if ends and stripped else 0
        count = records.newlines if ends else records.newlines + 1  # a last line without newline is still a line
        count -= max(trailing_blank, 0)
    return FileFacts(size, digest.hexdigest(), header, max(count - 1, 0) if size else 0, ends)


_QUOTE, _COMMA, _LF, _SPACE = ord('"'), ord(","), ord("\n"), ord(" ")
_FIELD_START = (_COMMA, _LF)


class _RecordCounter:
    """Record ends (newlines outside quoted fields) of a CSV fed chunk by chunk, with the state
    of DuckDB's reader carried from one chunk to the next."""

    def __init__(self) -> None:
        self.newlines = 0
        self.in_quotes = False
        self._closed = False  # right after a closing quote (spaces aside): a quote reopens the field
        self._before = b"\n\n"  # the last two bytes fed: the start of the file is a field start

    def feed(self, chunk: bytes) -> None:
        if not (self.in_quotes or self._closed) and b'"' not in chunk:  # the common case: one pass in C
            self.newlines += chunk.count(b"\n")
        else:
            self._walk(chunk)
        self._before = chunk[-2:] if len(chunk) >= 2 else (self._before + chunk)[-2:]

    def _walk(self, chunk: bytes) -> None:
        pos, end = 0, len(chunk)
        while pos < end:
            if self._closed:
                # A quote right after the closing one (a doubled quote: a quote character),
                # or after spaces, continues the quoted field; anything else ends it.
                while pos < end and chunk[pos] == _SPACE:
                    pos += 1
                if pos == end:
                    return
                self._closed = False
                if chunk[pos] == _QUOTE:
                    self.in_quotes, pos = True, pos + 1
                continue
            quote = chunk.find(b'"', pos)
            if self.in_quotes:
                if quote < 0:
                    return  # the rest of the chunk is inside the field
                self.in_quotes, self._closed, pos = False, True, quote + 1
                continue
            if quote < 0:
                self.newlines += chunk.count(b"\n", pos)
                return
            self.newlines += chunk.count(b"\n", pos, quote)
            self.in_quotes = self._opens_field(chunk, quote)  # elsewhere a quote is a literal character
            pos = quote + 1

    def _opens_field(self, chunk: bytes, quote: int) -> bool:
        """A quote opens a quoted field at the start of a field, or after ONE space there (as
        DuckDB's reader does; with two spaces or a tab it reads the quote as a character)."""
        one = chunk[quote - 1] if quote >= 1 else self._before[-1]
        if one in _FIELD_START:
            return True
        return one == _SPACE and (chunk[quote - 2] if quote >= 2 else self._before[quote - 2]) in _FIELD_START


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
            f"({facts.size} bytes, {facts.records} records); re-deliver the complete file"
        )
    return got
