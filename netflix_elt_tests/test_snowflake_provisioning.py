"""Snowflake provisioning and COPY SQL: parsed as Snowflake SQL, reviewed text, safe quoting."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from netflix_elt.movielens import DATASETS, dataset
from netflix_elt.snowflake import copy_into as cq
from netflix_elt.snowflake.provision import ACCOUNT, DATA, SnowflakeNames, main, render, statements
from netflix_elt.snowflake.sql import ident, literal, literal_list, qualified

EXPECTED = Path(__file__).parent / "expected" / "provision.sql"
NASTY_KEYS = [
    "raw/movies/it's.csv",
    "raw/movies/a';drop table RAW.MOVIES;--.csv",
    "raw/movies/back\\slash'; select 1 --.csv",
]
# Statement shapes sqlglot keeps as an opaque (but tokenised, single) Command.
COMMAND_PREFIXES = ("grant ", "create role ")


def parse(sql: str) -> exp.Expression:
    return sqlglot.parse_one(sql, read="snowflake")


def test_every_provisioning_statement_parses_as_snowflake_sql():
    for s in statements():
        tree = parse(s.sql)
        if isinstance(tree, exp.Command):
            assert s.sql.lower().startswith(COMMAND_PREFIXES), s.sql
        else:
            assert not s.sql.lower().startswith("grant ") or isinstance(tree, exp.Grant)


def test_the_script_is_one_statement_per_line_and_splits_back_into_the_same_statements():
    script = render(statements())
    parsed = [e for e in sqlglot.parse(script, read="snowflake") if e is not None]
    assert len(parsed) == len(statements())


def test_the_script_equals_the_reviewed_expected_text():
    assert render(statements()) == EXPECTED.read_text()


def test_dry_run_prints_the_script_and_connects_to_nothing(capsys, monkeypatch):
    for var in ("SNOWFLAKE_DATABASE", "SNOWFLAKE_WAREHOUSE", "NETFLIX_ELT_BUCKET", "SNOWFLAKE_INTEGRATION_ROLE_ARN"):
        monkeypatch.delenv(var, raising=False)
    assert main(["--dry-run"]) == 0
    assert capsys.readouterr().out == EXPECTED.read_text()


def test_provisioning_is_idempotent_text():
    for s in statements():
        low = s.sql.lower()
        if low.startswith("create "):
            assert "if not exists" in low or low.startswith("create or replace file format"), s.sql
        assert " drop " not in f" {low} "


def test_every_catalogue_table_and_column_is_created_with_load_metadata():
    sql = "\n".join(s.sql for s in statements())
    for ds in DATASETS:
        create = next(s.sql for s in statements() if s.sql.startswith(f"create table if not exists NETFLIX_ELT.RAW.{ds.name.upper()} "))
        for c in ds.columns:
            assert ident(c.name) + " " in create
        assert "_SOURCE_OBJECT VARCHAR" in create and "_LOADED_AT TIMESTAMP_NTZ" in create
    assert "NETFLIX_ELT.RAW._LOAD_LEDGER" in sql and "NETFLIX_ELT.RAW._LOAD_REJECTS" in sql


def test_the_warehouse_auto_suspends_and_the_stage_is_on_the_raw_prefix():
    sql = render(statements(SnowflakeNames(bucket="my-bucket")))
    assert "auto_suspend = 60 auto_resume = true" in sql
    assert "url = 's3://my-bucket/raw/' storage_integration = NETFLIX_ELT_S3" in sql
    assert "field_optionally_enclosed_by = '\"'" in sql and "skip_header = 1" in sql


def _grants_to(role: str) -> list[str]:
    return [s.sql for s in statements() if s.sql.startswith("grant ") and s.sql.endswith(f"to role {role}")
            or f"to role {role} copy" in s.sql]


def test_reporter_only_reads_marts():
    grants = _grants_to("REPORTER")
    privileges = [g for g in grants if " on schema " in g or " in schema " in g]
    assert privileges and all("NETFLIX_ELT.MARTS" in g for g in privileges)
    assert all(g.startswith(("grant select ", "grant usage ")) for g in grants)
    assert any("future tables in schema NETFLIX_ELT.MARTS" in g for g in grants)
    assert any("future views in schema NETFLIX_ELT.MARTS" in g for g in grants)


def test_loader_writes_raw_only_and_transformer_owns_the_dbt_schemas():
    loader = [g for g in _grants_to("LOADER") if "schema" in g]
    assert loader and all("NETFLIX_ELT.RAW" in g for g in loader)
    transformer = _grants_to("TRANSFORMER")
    for schema in ("STAGING", "CORE", "MARTS", "SNAPSHOTS"):
        assert f"grant ownership on schema NETFLIX_ELT.{schema} to role TRANSFORMER copy current grants" in transformer
    raw_grants = [g for g in transformer if "NETFLIX_ELT.RAW" in g]
    assert all(g.startswith(("grant select ", "grant usage ")) for g in raw_grants)


def test_the_emulator_subset_is_only_database_objects():
    kinds = {s.kind for s in statements()}
    assert kinds == {ACCOUNT, DATA}
    for s in statements():
        if s.kind == DATA:
            assert s.sql.startswith(("create database", "create schema", "create table", "create transient table",
                                     "create or replace file format"))


# -- quoting --------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["plain", "it's", "a';drop table x;--", "back\\slash'", "-- comment", "\\'"])
def test_a_literal_is_always_exactly_one_string_token(value):
    tree = parse(f"select {literal(value)}")
    (only,) = tree.expressions
    assert isinstance(only, exp.Literal) and only.is_string
    assert only.this.replace("\\\\", "\\") == value or only.this == value.replace("\\", "\\\\")


@pytest.mark.parametrize("name", ['we"ird', "semi;colon", "x -- y", "lower", "TABLE", "timestamp", "_LOADED_AT"])
def test_an_identifier_is_always_one_identifier(name):
    tree = parse(f"select 1 from {qualified('DB', 'RAW', name)}")
    table = tree.find(exp.Table)
    assert table is not None and table.catalog.upper() == "DB"
    assert table.name == name or table.name == name.upper()


def test_simple_identifiers_upper_case_like_snowflake_and_reserved_ones_are_quoted():
    assert ident("movieId") == "MOVIEID"
    assert ident("timestamp") == '"TIMESTAMP"'
    assert ident('a"b') == '"a""b"'
    with pytest.raises(ValueError):
        ident("")
    with pytest.raises(ValueError):
        literal("a\x00b")
    assert literal_list(["a", "b'"]) == "('a', 'b''')"


@pytest.mark.parametrize("key", NASTY_KEYS)
def test_a_hostile_object_key_cannot_break_out_of_the_copy_statement(key):
    ds = dataset("movies")
    sql = cq.copy_statement(SnowflakeNames(), ds, key, force=True)
    trees = [t for t in sqlglot.parse(sql, read="snowflake") if t is not None]
    assert len(trees) == 1 and isinstance(trees[0], exp.Copy)
    strings = [lit.this for lit in trees[0].find_all(exp.Literal) if lit.is_string]
    relative = key[len("raw/"):]
    assert any(s in (relative, relative.replace("'", "\\'"), literal(relative)[1:-1]) for s in strings), strings
    # Outside string literals the statement is the same as for a harmless key.
    safe = cq.copy_statement(SnowflakeNames(), ds, "raw/movies/x.csv", force=True)
    assert sql.replace(literal(relative), "'X'") == safe.replace("'movies/x.csv'", "'X'")


@pytest.mark.parametrize("key", NASTY_KEYS)
def test_every_load_statement_with_a_hostile_key_is_one_statement(key):
    n, ds = SnowflakeNames(), dataset("ratings")
    for sql in (
        cq.delete_object_rows_statement(n, ds, key),
        cq.delete_object_rejects_statement(n, ds, key),
        cq.insert_valid_statement(n, ds, key),
        cq.typed_rejects_statement(n, ds, key, "etag'"),
        cq.validate_rejects_statement(n, ds, key, "etag'", "01b2-'x"),
    ):
        trees = [t for t in sqlglot.parse(sql, read="snowflake") if t is not None]
        assert len(trees) == 1, sql
        assert not isinstance(trees[0], exp.Command), sql


def test_the_emulator_stage_path_refuses_keys_outside_a_safe_alphabet():
    with pytest.raises(ValueError):
        cq.copy_statement(SnowflakeNames(), dataset("movies"), NASTY_KEYS[1], emulator=True)
    ok = cq.copy_statement(SnowflakeNames(), dataset("ratings"), "raw/ratings/month=2000-01/ratings.csv", emulator=True)
    assert isinstance(parse(ok), exp.Copy)


def test_a_corrected_file_is_forced_and_a_new_one_is_not():
    n, ds = SnowflakeNames(), dataset("movies")
    assert cq.copy_statement(n, ds, "raw/movies/movies.csv").endswith("on_error = continue")
    assert cq.copy_statement(n, ds, "raw/movies/movies.csv", force=True).endswith("force = true")
    assert "files = ('movies/movies.csv')" in cq.copy_statement(n, ds, "raw/movies/movies.csv")
