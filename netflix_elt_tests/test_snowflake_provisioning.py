"""Snowflake provisioning and COPY SQL: parsed as Snowflake SQL, reviewed text, safe quoting."""

from __future__ import annotations

import os
import subprocess
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
COMMAND_PREFIXES = ("grant ", "create role ", "alter warehouse ")


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
    for var in ("SNOWFLAKE_DATABASE", "SNOWFLAKE_WAREHOUSE", "NETFLIX_ELT_BUCKET", "SNOWFLAKE_INTEGRATION_ROLE_ARN",
                "SNOWFLAKE_ROLE", "SNOWFLAKE_LOADER_ROLE"):
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


# -- the emulator macros (dbt_project/macros/emulator_compat.sql) change nothing on a real account --

EMULATOR_MACROS_PROBE = (
    "{% set r = api.Relation.create(database='D', schema='S', identifier='T') %}"
    "{{ netflix_elt_on_emulator() }}\n@@\n"
    "{{ snowflake__create_table_temporary_sql(r, 'select 1') }}\n@@\n"
    "{{ snowflake__create_view_as_with_temp_flag(r, 'select 1', True) }}\n@@\n"
    "{{ snowflake_dml_explicit_transaction('delete from D.S.T') }}\n@@\n"
    "{{ snowflake__snapshot_merge_sql(r, 'D.S.T__dbt_tmp', ['A', 'B']) }}\n@@\n"
    "{{ snowflake__safe_cast('5', 'UBIGINT') }}"
)


def _render_emulator_macros(tmp_path, host: str) -> subprocess.Popen:
    """`dbt compile --inline` on the prod target: renders the macros without connecting."""
    from netflix_elt.dbt_manifest import dbt_executable
    from netflix_elt.settings import DBT_PROJECT_DIR, Settings

    out = tmp_path / (host or "real")
    settings = Settings.from_env(dict(
        NETFLIX_ELT_TARGET="prod", SNOWFLAKE_HOST=host, SNOWFLAKE_ACCOUNT="xy12345", SNOWFLAKE_USER="u",
        SNOWFLAKE_WAREHOUSE="W", SNOWFLAKE_DATABASE="D", NETFLIX_ELT_HOME=str(tmp_path / "home")))
    env = dict(os.environ, **settings.dbt_env(), SNOWFLAKE_PASSWORD="not-used", DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    return subprocess.Popen(
        [dbt_executable(), "compile", "--target", "prod", "--quiet", "--no-populate-cache",
         "--profiles-dir", str(DBT_PROJECT_DIR), "--project-dir", str(DBT_PROJECT_DIR),
         "--target-path", str(out / "target"), "--log-path", str(out / "logs"), "--inline", EMULATOR_MACROS_PROBE],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _parts(proc: subprocess.Popen) -> list[str]:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    return [" ".join(p.split()) for p in out.split("@@")]


def test_the_emulator_macros_only_change_the_sql_for_a_loopback_host(tmp_path):
    pytest.importorskip("dbt.adapters.snowflake", reason="dbt-snowflake is not installed")
    real_proc, emu_proc = _render_emulator_macros(tmp_path, ""), _render_emulator_macros(tmp_path, "127.0.0.1")
    real, emu = _parts(real_proc), _parts(emu_proc)
    # Real account (empty host = derived from the account): dbt-snowflake's own SQL.
    assert real[0] == "False"
    assert real[1].startswith("create or replace temporary table D.S.T")
    assert "temporary view D.S.T" in real[2]
    assert real[3] == "begin; delete from D.S.T; commit;"
    assert real[4].startswith("begin; merge into D.S.T") and real[4].endswith("values (A, B) ; commit;")
    assert real[5] == "try_cast(5 as UBIGINT)"
    # Loopback (fakesnow): transient/ordinary relations, no explicit transaction, qualified values.
    assert emu[0] == "True"
    assert emu[1].startswith("create or replace transient table D.S.T")
    assert "create or replace view D.S.T" in emu[2] and "temporary" not in emu[2]
    assert emu[3] == "delete from D.S.T"
    assert emu[4].startswith("merge into D.S.T") and emu[4].endswith(
        "values (DBT_INTERNAL_SOURCE.A, DBT_INTERNAL_SOURCE.B)")
    assert emu[5] == "try_cast(5 as NUMBER(38, 0))"
    for sql in real[1:5] + emu[1:5]:  # and every variant is Snowflake SQL
        assert all(t is not None for t in sqlglot.parse(sql, read="snowflake")), sql


# -- settings and secrets -------------------------------------------------------------------------

SECRET = "s3cr3t-Pa55word-do-not-log"


def _sf_env(**extra) -> dict:
    return {"NETFLIX_ELT_TARGET": "prod", "SNOWFLAKE_ACCOUNT": "xy12345.eu-west-1", "SNOWFLAKE_USER": "NETFLIX_ELT",
            "SNOWFLAKE_DATABASE": "MOVIES_DB", "SNOWFLAKE_WAREHOUSE": "MOVIES_WH", "SNOWFLAKE_LOADER_ROLE": "LOAD_ROLE",
            "SNOWFLAKE_PASSWORD": SECRET, **extra}


def test_the_warehouse_resource_holds_an_env_var_reference_never_the_secret():
    import dagster as dg

    from netflix_elt.resources.snowflake_warehouse import build_snowflake_warehouse
    from netflix_elt.settings import Settings, SnowflakeSettings

    wh = build_snowflake_warehouse(Settings.from_env(_sf_env()))
    sf = wh.snowflake
    assert isinstance(sf.password, dg.EnvVar) and sf.password.env_var_name == SnowflakeSettings.PASSWORD_ENV
    config = sf._resolved_config_dict  # what Dagster stores and shows for the resource
    assert config["password"] == {"env": SnowflakeSettings.PASSWORD_ENV}
    assert SECRET not in repr(wh) and SECRET not in repr(config) and SECRET not in repr(wh._resolved_config_dict)
    # Everything else comes from Settings.snowflake.
    assert (config["account"], config["user"], config["database"], config["warehouse"], config["role"],
            config["schema"]) == ("xy12345.eu-west-1", "NETFLIX_ELT", "MOVIES_DB", "MOVIES_WH", "LOAD_ROLE", "RAW")
    assert (wh.database, wh.stage_mode, wh.emulator) == ("MOVIES_DB", "external", False)
    # A real account: no host of ours (the connector derives it), and every wait bounded.
    assert config["additional_snowflake_connection_args"] == {"socket_timeout": 120}
    assert (config["login_timeout"], config["network_timeout"]) == (60, 120)


def test_dagster_resolves_the_secret_only_when_the_resource_is_initialised(monkeypatch):
    import dagster as dg

    from netflix_elt.resources.snowflake_warehouse import build_snowflake_warehouse
    from netflix_elt.settings import Settings, SnowflakeSettings

    wh = build_snowflake_warehouse(Settings.from_env(_sf_env()))  # built while the secret is elsewhere
    monkeypatch.setenv(SnowflakeSettings.PASSWORD_ENV, "resolved-at-run-time")
    with dg.build_resources({"warehouse": wh}) as resources:  # what a run does
        assert resources.warehouse.snowflake._resolved_config_dict["password"] == "resolved-at-run-time"
    monkeypatch.delenv(SnowflakeSettings.PASSWORD_ENV)
    with pytest.raises(dg.DagsterInvalidConfigError, match=SnowflakeSettings.PASSWORD_ENV):
        with dg.build_resources({"warehouse": wh}):
            pass


def test_key_pair_auth_references_the_key_variables_and_no_password():
    import dagster as dg

    from netflix_elt.snowflake.provision import snowflake_resource
    from netflix_elt.settings import SnowflakeSettings

    sf = SnowflakeSettings.from_env(_sf_env(SNOWFLAKE_PRIVATE_KEY_PATH="/secret/rsa_key.p8"))
    assert sf.auth == "key_pair"
    plain = snowflake_resource(sf)._resolved_config_dict
    assert plain["private_key_path"] == {"env": SnowflakeSettings.PRIVATE_KEY_PATH_ENV}
    assert "password" not in plain and "private_key_password" not in plain
    encrypted = snowflake_resource(sf, private_key_passphrase=True)
    assert isinstance(encrypted.private_key_password, dg.EnvVar)
    assert encrypted._resolved_config_dict["private_key_password"] == {"env": SnowflakeSettings.PRIVATE_KEY_PASSPHRASE_ENV}
    assert "/secret/rsa_key.p8" not in repr(encrypted)


def test_an_emulator_host_is_passed_through_and_selects_the_emulator_mode():
    from netflix_elt.resources.snowflake_warehouse import build_snowflake_warehouse
    from netflix_elt.settings import Settings

    wh = build_snowflake_warehouse(Settings.from_env(_sf_env(
        SNOWFLAKE_HOST="localhost", SNOWFLAKE_PORT="8080", SNOWFLAKE_PROTOCOL="http")))
    assert wh.emulator and wh.ensure_tables and wh.stage_mode == "internal"
    assert wh.snowflake.additional_snowflake_connection_args == {
        "host": "localhost", "port": 8080, "protocol": "http", "socket_timeout": 120}


def test_names_come_from_settings_and_cli_overrides_win():
    from netflix_elt.settings import Settings

    names = SnowflakeNames.from_settings(Settings.from_env(_sf_env(NETFLIX_ELT_BUCKET="b", SNOWFLAKE_ROLE="XFORM")))
    assert (names.database, names.warehouse, names.bucket, names.loader_role, names.transformer_role) == (
        "MOVIES_DB", "MOVIES_WH", "b", "LOAD_ROLE", "XFORM")
    assert SnowflakeNames.from_settings(Settings(), database="OTHER").database == "OTHER"
    assert SnowflakeNames.from_settings(Settings()) == SnowflakeNames()


def test_provision_builds_its_names_from_settings(capsys, monkeypatch):
    for var in ("SNOWFLAKE_WAREHOUSE", "NETFLIX_ELT_BUCKET", "SNOWFLAKE_INTEGRATION_ROLE_ARN", "SNOWFLAKE_ROLE",
                "SNOWFLAKE_LOADER_ROLE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SNOWFLAKE_DATABASE", "MOVIES_DB")
    assert main(["--dry-run", "--data-only"]) == 0
    out = capsys.readouterr().out
    assert "create database if not exists MOVIES_DB;" in out and "NETFLIX_ELT." not in out


def test_provision_without_credentials_stops_before_connecting_and_prints_no_secret(capsys, monkeypatch):
    for var in ("SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", SECRET)
    with pytest.raises(SystemExit) as stop:
        main([])
    assert "SNOWFLAKE_ACCOUNT" in str(stop.value) and SECRET not in str(stop.value)
    assert SECRET not in capsys.readouterr().out
