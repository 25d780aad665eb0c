"""The SQL of one object's load into Snowflake, built from the catalogue.

Per object (one file; for ratings, one month):

1. ``COPY INTO RAW._LANDING_<ds> FROM @RAW.MOVIELENS_RAW FILES = ('<key under raw/>')`` with the
   GroupLens file format and ``ON_ERROR = CONTINUE``; ``FORCE = TRUE`` only for a corrected file
   (new ETag of a key already loaded). No transformation, so Snowflake's load history makes the
   same file a no-op and ``VALIDATE`` returns every record COPY refused.
2. ``VALIDATE(...)`` of that COPY into ``RAW._LOAD_REJECTS`` (rows COPY could not parse).
3. Rows that parsed but do not type or break a catalogue rule into ``RAW._LOAD_REJECTS``.
4. Delete the object's previous rows from the raw table, insert the valid rows with
   ``_SOURCE_OBJECT`` = the key and ``_LOADED_AT``, and empty the landing table with DELETE
   (TRUNCATE would forget the load history).

The key only ever appears inside string literals (``sql.literal``). ``emulator=True`` builds the
variant fakesnow runs: no ``ON_ERROR`` and the file named in the stage path instead of
``FILES = (...)`` (fakesnow supports neither for an internal stage); such a path is accepted only
for keys made of a safe alphabet.
"""

from __future__ import annotations

import re

from netflix_elt.movielens import RAW_PREFIX, Column, Dataset
from netflix_elt.snowflake.provision import SnowflakeNames
from netflix_elt.snowflake.sql import ident, literal, snowflake_type

_SAFE_STAGE_PATH = re.compile(r"^[A-Za-z0-9_.=/-]+$")
_UNSIGNED = ("UINTEGER",)


def stage_relative(key: str) -> str:
    """The stage is on the bucket's ``raw/`` prefix: files are named relative to it."""
    if not key.startswith(RAW_PREFIX):
        raise ValueError(f"object key {key!r} is not under {RAW_PREFIX!r}, the stage's prefix")
    return key[len(RAW_PREFIX):]


def copy_statement(names: SnowflakeNames, ds: Dataset, key: str, *, force: bool = False,
                   emulator: bool = False, stage: str | None = None, file_name: str | None = None) -> str:
    """COPY one object into the dataset's landing table.

    ``stage``/``file_name`` override the stage and the file's name in it (the emulator test
    PUTs files to an internal stage, which gzips them)."""
    stage = stage or "@" + names.stage
    name = file_name if file_name is not None else stage_relative(key)
    target = names.landing_table(ds)
    fmt = f"file_format = (format_name = {literal(names.file_format)})"
    if emulator:
        if not _SAFE_STAGE_PATH.match(name) or ".." in name:
            raise ValueError(f"refusing to put {name!r} in a stage path; only [A-Za-z0-9_.=/-] is allowed there")
        sql = f"copy into {target} from {stage}/{name} {fmt}"
    else:
        sql = f"copy into {target} from {stage} files = ({literal(name)}) {fmt} on_error = continue"
    return sql + (" force = true" if force else "")


def validate_rejects_statement(names: SnowflakeNames, ds: Dataset, key: str, etag: str, query_id: str) -> str:
    """Every record the COPY refused, with its line and text, into the rejects table."""
    return (
        f"insert into {names.rejects} (DATASET, OBJECT_KEY, ETAG, LINE_NUMBER, RAW_LINE, REASON, REJECTED_AT) "
        f"select {literal(ds.name)}, {literal(key)}, {literal(etag)}, LINE, REJECTED_RECORD, "
        f"'COPY: ' || ERROR, current_timestamp()::timestamp_ntz "
        f"from table(validate({names.landing_table(ds)}, job_id => {literal(query_id)}))"
    )


def _typed(c: Column) -> str:
    return f"try_cast({ident(c.name)} as {snowflake_type(c.sql_type)})"


def _reason_sql(ds: Dataset) -> str:
    """NULL for a valid landing row, else the first thing wrong with it (text)."""
    whens = []
    for c in ds.columns:
        col = ident(c.name)
        if not c.nullable:
            whens.append(f"when {col} is null then {literal('missing ' + c.name)}")
        sf_type = snowflake_type(c.sql_type)
        if sf_type.startswith("NUMBER") and c.reader_type in _UNSIGNED:
            # try_cast would round '1.5' to 2: whole non-negative numbers only, like DuckDB's UINTEGER.
            whens.append(f"when {col} is not null and not regexp_like({col}, '[0-9]+') "
                         f"then {literal(c.name + ' is not a whole non-negative number')}")
        elif sf_type != "VARCHAR":
            whens.append(f"when {col} is not null and {_typed(c)} is null then {literal(c.name + ' is not a ' + sf_type)}")
    for col_name, check in ds.checks:
        c = next(c for c in ds.columns if c.name == col_name)
        # The catalogue's predicate names the column; evaluate it on the typed value.
        predicate = re.sub(rf"\b{re.escape(col_name)}\b", _typed(c), check)
        whens.append(f"when not coalesce({predicate}, true) then {literal(col_name + ' breaks rule: ' + check)}")
    return f"case {' '.join(whens)} else null end"


def typed_rejects_statement(names: SnowflakeNames, ds: Dataset, key: str, etag: str) -> str:
    """Landing rows that do not type or break a rule, with their values joined back into text."""
    raw_line = " || ',' || ".join(f"coalesce({ident(c.name)}, '')" for c in ds.columns)
    return (
        f"insert into {names.rejects} (DATASET, OBJECT_KEY, ETAG, LINE_NUMBER, RAW_LINE, REASON, REJECTED_AT) "
        f"select {literal(ds.name)}, {literal(key)}, {literal(etag)}, null, RAW_LINE, REASON, current_timestamp()::timestamp_ntz "
        f"from (select {raw_line} as RAW_LINE, {_reason_sql(ds)} as REASON from {names.landing_table(ds)}) "
        "where REASON is not null"
    )


def insert_valid_statement(names: SnowflakeNames, ds: Dataset, key: str) -> str:
    cols = [ident(c.name) for c in ds.columns]
    typed = ", ".join(f"{_typed(c)}" for c in ds.columns)
    return (
        f"insert into {names.raw_table(ds)} ({', '.join(cols)}, _SOURCE_OBJECT, _LOADED_AT) "
        f"select {typed}, {literal(key)}, current_timestamp()::timestamp_ntz "
        f"from {names.landing_table(ds)} where ({_reason_sql(ds)}) is null"
    )


def delete_object_rows_statement(names: SnowflakeNames, ds: Dataset, key: str) -> str:
    return f"delete from {names.raw_table(ds)} where _SOURCE_OBJECT = {literal(key)}"


def delete_object_rejects_statement(names: SnowflakeNames, ds: Dataset, key: str) -> str:
    return f"delete from {names.rejects} where DATASET = {literal(ds.name)} and OBJECT_KEY = {literal(key)}"


def clear_landing_statement(names: SnowflakeNames, ds: Dataset) -> str:
    return f"delete from {names.landing_table(ds)}"


def count_landing_statement(names: SnowflakeNames, ds: Dataset) -> str:
    return f"select count(*) from {names.landing_table(ds)}"


def sql_type_of(c: Column) -> str:  # re-exported for tests
    return snowflake_type(c.sql_type)
