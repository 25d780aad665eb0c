"""Provisioning as code: the Snowflake account objects the pipeline needs, generated from the catalogue.

``statements(config)`` is the whole script, in order, each statement idempotent
(``create ... if not exists``; ``create or replace`` only for the file format, which holds no
data and whose options we own). Re-running it on a provisioned account changes nothing.

Least privilege:

- ``LOADER``      writes the ``RAW`` schema only (raw tables, ledger, rejects, landing tables) and
                  reads the stage. It cannot see staging/core/marts.
- ``TRANSFORMER`` reads ``RAW`` and owns the dbt schemas (staging, core, marts, snapshots).
- ``REPORTER``    reads ``MARTS`` only (tables and views, current and future): the role for
                  Looker Studio, Power BI and Tableau.

Every role gets usage on the warehouse and the database. Account-level objects are created by
the system roles that own them by convention (SYSADMIN: warehouse, database, schemas, tables;
SECURITYADMIN: roles and grants; ACCOUNTADMIN: the storage integration).

The console command ``netflix-elt provision [--dry-run]`` prints or applies the script; applying
goes through dagster-snowflake's ``SnowflakeResource``. Connection values come from
``Settings.snowflake`` (``SNOWFLAKE_ACCOUNT``, ``SNOWFLAKE_USER``, ...: read by
``netflix_elt.settings`` only); the secret (``SNOWFLAKE_PASSWORD``, or
``SNOWFLAKE_PRIVATE_KEY_PATH`` [+ ``SNOWFLAKE_PRIVATE_KEY_PASSPHRASE``]) is handed to the resource
as a ``dg.EnvVar`` reference, resolved only when a connection is opened, so it is never held in
resource config, shown in the Dagster UI, or printed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from netflix_elt.movielens import DATASETS, LOAD_METADATA_COLUMNS, RAW_PREFIX, Dataset
from netflix_elt.settings import Settings, SettingsError, SnowflakeSettings
from netflix_elt.snowflake.sql import ident, literal, literal_list, qualified, snowflake_type

if TYPE_CHECKING:
    from dagster_snowflake import SnowflakeResource

RAW = "RAW"
DBT_SCHEMAS = ("STAGING", "CORE", "MARTS", "SNAPSHOTS")
SCHEMAS = (RAW, *DBT_SCHEMAS)
FILE_FORMAT = "MOVIELENS_CSV"
STAGE = "MOVIELENS_RAW"
LEDGER = "_LOAD_LEDGER"
REJECTS = "_LOAD_REJECTS"
LANDING_PREFIX = "_LANDING_"

# Kinds of statement: "account" needs a real Snowflake account (roles, grants, warehouse,
# integration, external stage); "data" creates the database objects the pipeline reads and
# writes, and is what an emulator can run.
ACCOUNT, DATA = "account", "data"


@dataclass(frozen=True)
class SnowflakeNames:
    """Every name the script uses; the defaults match ``dbt_project/profiles.yml``."""

    database: str = "NETFLIX_ELT"
    warehouse: str = "NETFLIX_ELT_WH"
    warehouse_size: str = "XSMALL"
    auto_suspend_seconds: int = 60
    statement_timeout_s: int = 3600  # every statement on the warehouse (dbt's and the loads') is bounded
    bucket: str = "netflix-elt"
    integration: str = "NETFLIX_ELT_S3"
    integration_role_arn: str = "arn:aws:iam::123456789012:role/netflix-elt-snowflake"
    loader_role: str = "LOADER"
    transformer_role: str = "TRANSFORMER"
    reporter_role: str = "REPORTER"
    # The user the pipeline connects as (SNOWFLAKE_USER): granted the three roles, since it loads
    # (LOADER), runs dbt (TRANSFORMER) and builds the dashboard (REPORTER). None: grant by hand.
    pipeline_user: str | None = None

    @property
    def stage_url(self) -> str:
        return f"s3://{self.bucket}/{RAW_PREFIX}"

    def table(self, name: str, schema: str = RAW) -> str:
        return qualified(self.database, schema, name)

    def schema(self, schema: str) -> str:
        return qualified(self.database, schema)

    @property
    def file_format(self) -> str:
        return self.table(FILE_FORMAT)

    @property
    def stage(self) -> str:
        return self.table(STAGE)

    @property
    def ledger(self) -> str:
        return self.table(LEDGER)

    @property
    def rejects(self) -> str:
        return self.table(REJECTS)

    def raw_table(self, ds: Dataset) -> str:
        return self.table(ds.name)

    def landing_table(self, ds: Dataset) -> str:
        return self.table(LANDING_PREFIX + ds.name)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> "SnowflakeNames":
        """Names from ``Settings`` (database, warehouse, roles, bucket, integration role); an
        override that is not None wins (the CLI's ``--database`` etc.)."""
        sf = settings.snowflake
        base = cls()
        values = {
            "database": sf.database or base.database,
            "warehouse": sf.warehouse or base.warehouse,
            "bucket": settings.bucket or base.bucket,
            "integration_role_arn": sf.integration_role_arn or base.integration_role_arn,
            "loader_role": sf.loader_role or base.loader_role,
            "transformer_role": sf.transformer_role or base.transformer_role,
            "reporter_role": sf.reporter_role or base.reporter_role,
            "statement_timeout_s": sf.statement_timeout_s,
            "pipeline_user": sf.user,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(base, **values)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> "SnowflakeNames":
        """Shorthand for ``from_settings(Settings.from_env(environ))``."""
        return cls.from_settings(Settings.from_env(environ), **overrides)


@dataclass(frozen=True)
class Statement:
    kind: str  # ACCOUNT or DATA
    sql: str
    comment: str | None = None


# -- DDL pieces shared with the loader ------------------------------------------------------------

def column_ddl(ds: Dataset) -> list[str]:
    cols = [f"{ident(c.name)} {snowflake_type(c.sql_type)}" for c in ds.columns]
    cols += [f"{ident(name)} {snowflake_type(sql_type)}" for name, sql_type in LOAD_METADATA_COLUMNS]
    return cols


def raw_table_ddl(names: SnowflakeNames, ds: Dataset) -> str:
    return f"create table if not exists {names.raw_table(ds)} ({', '.join(column_ddl(ds))})"


def landing_table_ddl(names: SnowflakeNames, ds: Dataset) -> str:
    """Where COPY lands a file as text (one VARCHAR per delivered column).

    COPY loads without a transformation, so Snowflake's load history (per table) makes the same
    file a no-op and ``VALIDATE`` can return every rejected record. The loader then types and
    checks the rows and moves them to the raw table. Rows are removed with DELETE, never
    TRUNCATE, which would also forget the load history.
    """
    cols = ", ".join(f"{ident(c.name)} VARCHAR" for c in ds.columns)
    return f"create transient table if not exists {names.landing_table(ds)} ({cols})"


def ledger_ddl(names: SnowflakeNames) -> str:
    return (
        f"create table if not exists {names.ledger} (DATASET VARCHAR NOT NULL, OBJECT_KEY VARCHAR NOT NULL, "
        "ETAG VARCHAR, CONTENT_HASH VARCHAR, PARTITION_KEY VARCHAR, BYTES NUMBER(38, 0), "
        "ROWS_IN_FILE NUMBER(38, 0), ROWS_LOADED NUMBER(38, 0), ROWS_REJECTED NUMBER(38, 0), "
        "STATUS VARCHAR NOT NULL, DUPLICATE_OF VARCHAR, LOADED_AT TIMESTAMP_NTZ NOT NULL, RUN_ID VARCHAR)"
    )


def rejects_ddl(names: SnowflakeNames) -> str:
    return (
        f"create table if not exists {names.rejects} (DATASET VARCHAR NOT NULL, OBJECT_KEY VARCHAR NOT NULL, "
        "ETAG VARCHAR, LINE_NUMBER NUMBER(38, 0), RAW_LINE VARCHAR, REASON VARCHAR NOT NULL, "
        "REJECTED_AT TIMESTAMP_NTZ NOT NULL)"
    )


def file_format_ddl(names: SnowflakeNames) -> str:
    """GroupLens CSV: comma-separated, header line, fields optionally in double quotes with a quote
    inside doubled (``"Lock, Stock & Two Smoking Barrels (1998)"``), CRLF or LF line ends (Snowflake's
    default RECORD_DELIMITER is a logical newline that accepts both), empty field = NULL (tmdbId),
    no backslash escapes outside quotes (titles may contain a backslash)."""
    return (
        f"create or replace file format {names.file_format} type = csv field_delimiter = ',' skip_header = 1 "
        "field_optionally_enclosed_by = '\"' escape_unenclosed_field = none null_if = ('') "
        "empty_field_as_null = true compression = auto"
    )


# -- the script -----------------------------------------------------------------------------------

def statements(names: SnowflakeNames | None = None, datasets: Iterable[Dataset] = DATASETS) -> list[Statement]:
    n = names or SnowflakeNames()
    datasets = tuple(datasets)
    db, wh = ident(n.database), ident(n.warehouse)
    loader, transformer, reporter = ident(n.loader_role), ident(n.transformer_role), ident(n.reporter_role)
    integration = ident(n.integration)
    out: list[Statement] = []

    def add(kind: str, sql: str, comment: str | None = None) -> None:
        out.append(Statement(kind, sql, comment))

    add(ACCOUNT, "use role SYSADMIN", "Warehouse, database and schemas: SYSADMIN owns them.")
    add(
        ACCOUNT,
        f"create warehouse if not exists {wh} warehouse_size = {literal(n.warehouse_size)} "
        f"auto_suspend = {int(n.auto_suspend_seconds)} auto_resume = true initially_suspended = true",
    )
    add(ACCOUNT, f"alter warehouse {wh} set statement_timeout_in_seconds = {int(n.statement_timeout_s)}",
        "A statement that runs longer fails instead of holding the warehouse (dbt and the loads alike).")
    add(DATA, f"create database if not exists {db}")
    for schema in SCHEMAS:
        add(DATA, f"create schema if not exists {n.schema(schema)}")

    add(ACCOUNT, "use role ACCOUNTADMIN", "Storage integration: S3 access through an IAM role, no keys in Snowflake.")
    add(
        ACCOUNT,
        f"create storage integration if not exists {integration} type = external_stage storage_provider = 'S3' "
        f"enabled = true storage_aws_role_arn = {literal(n.integration_role_arn)} "
        f"storage_allowed_locations = {literal_list([n.stage_url])}",
    )
    add(ACCOUNT, f"grant usage on integration {integration} to role SYSADMIN")

    add(ACCOUNT, "use role SYSADMIN", "File format, stage, raw tables, ledger and rejects.")
    add(DATA, file_format_ddl(n))
    add(
        ACCOUNT,
        f"create stage if not exists {n.stage} url = {literal(n.stage_url)} storage_integration = {integration} "
        f"file_format = (format_name = {literal(n.file_format)})",
    )
    for ds in datasets:
        add(DATA, raw_table_ddl(n, ds))
    for ds in datasets:
        add(DATA, landing_table_ddl(n, ds))
    add(DATA, ledger_ddl(n))
    add(DATA, rejects_ddl(n))

    add(ACCOUNT, "use role SECURITYADMIN", "Roles (least privilege), granted up to SYSADMIN so admins can manage them.")
    for role in (loader, transformer, reporter):
        add(ACCOUNT, f"create role if not exists {role}")
        add(ACCOUNT, f"grant role {role} to role SYSADMIN")
        if n.pipeline_user:
            add(ACCOUNT, f"grant role {role} to user {ident(n.pipeline_user)}")
        add(ACCOUNT, f"grant usage on warehouse {wh} to role {role}")
        add(ACCOUNT, f"grant usage on database {db} to role {role}")

    raw = n.schema(RAW)
    add(ACCOUNT, f"grant usage on schema {raw} to role {loader}", "LOADER: write RAW only.")
    add(ACCOUNT, f"grant select, insert, update, delete on all tables in schema {raw} to role {loader}")
    add(ACCOUNT, f"grant select, insert, update, delete on future tables in schema {raw} to role {loader}")
    add(ACCOUNT, f"grant usage on stage {n.stage} to role {loader}")
    add(ACCOUNT, f"grant usage on file format {n.file_format} to role {loader}")

    add(ACCOUNT, f"grant usage on schema {raw} to role {transformer}", "TRANSFORMER: read RAW, own the dbt schemas.")
    add(ACCOUNT, f"grant select on all tables in schema {raw} to role {transformer}")
    add(ACCOUNT, f"grant select on future tables in schema {raw} to role {transformer}")
    for schema in DBT_SCHEMAS:
        add(ACCOUNT, f"grant ownership on schema {n.schema(schema)} to role {transformer} copy current grants")

    marts = n.schema("MARTS")
    add(ACCOUNT, f"grant usage on schema {marts} to role {reporter}", "REPORTER: read MARTS only (BI tools).")
    for what in ("tables", "views"):
        add(ACCOUNT, f"grant select on all {what} in schema {marts} to role {reporter}")
        add(ACCOUNT, f"grant select on future {what} in schema {marts} to role {reporter}")
    return out


def render(stmts: Sequence[Statement]) -> str:
    """The script as text: comments on their own lines, one statement per line, ``;``-terminated."""
    lines = [
        "-- netflix-elt Snowflake provisioning (generated by netflix_elt.snowflake.provision; do not edit).",
        "-- Idempotent: safe to run again. Run as a user that can use ACCOUNTADMIN, SYSADMIN and SECURITYADMIN.",
    ]
    for s in stmts:
        if s.comment:
            lines.append("")
            lines.append(f"-- {s.comment}")
        lines.append(s.sql + ";")
    return "\n".join(lines) + "\n"


# -- applying it ----------------------------------------------------------------------------------

def snowflake_resource(
    sf: SnowflakeSettings,
    *,
    role: str | None = None,
    database: str | None = None,
    schema: str | None = None,
    warehouse: str | None = None,
    private_key_passphrase: bool | None = None,
) -> "SnowflakeResource":
    """dagster-snowflake's resource for ``sf``, holding no secret.

    Account, user, warehouse and (for an emulator) host/port/protocol are plain values from the
    settings. The secret is a ``dg.EnvVar`` naming the variable that holds it
    (``SnowflakeSettings.PASSWORD_ENV``, or ``PRIVATE_KEY_PATH_ENV`` for key-pair auth, plus
    ``PRIVATE_KEY_PASSPHRASE_ENV`` for an encrypted key): Dagster resolves it when a run (or
    ``dg.build_resources``) initialises the resource and shows only the name in the UI.
    ``private_key_passphrase``: whether to reference the passphrase variable (an unset EnvVar is
    a run-time error, so it is only referenced when the key is encrypted); default: the settings'
    ``has_private_key_passphrase`` when that field exists, else False.
    """
    import dagster as dg
    from dagster_snowflake import SnowflakeResource

    missing = [name for name, value in (("SNOWFLAKE_ACCOUNT", sf.account), ("SNOWFLAKE_USER", sf.user)) if not value]
    if missing:
        raise SettingsError(
            f"set {', '.join(missing)} (and {SnowflakeSettings.PASSWORD_ENV} or {SnowflakeSettings.PRIVATE_KEY_PATH_ENV})"
        )
    kwargs: dict = {"account": sf.account, "user": sf.user}
    if sf.auth == "key_pair":
        kwargs["private_key_path"] = dg.EnvVar(SnowflakeSettings.PRIVATE_KEY_PATH_ENV)
        if private_key_passphrase is None:
            private_key_passphrase = bool(getattr(sf, "has_private_key_passphrase", False))
        if private_key_passphrase:
            kwargs["private_key_password"] = dg.EnvVar(SnowflakeSettings.PRIVATE_KEY_PASSPHRASE_ENV)
    elif sf.auth == "password":
        kwargs["password"] = dg.EnvVar(SnowflakeSettings.PASSWORD_ENV)
    else:
        raise SettingsError(f"Snowflake auth {sf.auth!r}: expected 'password' or 'key_pair'")
    for key, value in (("role", role), ("database", database), ("schema", schema),  # the field is schema_, alias schema
                       ("warehouse", warehouse or sf.warehouse)):
        if value:
            kwargs[key] = value
    # Bounded waits: a dead or erroring endpoint fails the step within these, instead of the
    # connector retrying for as long as the endpoint answers (seen: 15 minutes of HTTP 500s).
    kwargs["login_timeout"] = int(getattr(sf, "login_timeout_s", 60))
    kwargs["network_timeout"] = int(getattr(sf, "network_timeout_s", 120))
    extra: dict = {"socket_timeout": int(getattr(sf, "network_timeout_s", 120))}
    if sf.host:
        extra.update({"host": sf.host, "port": int(sf.port), "protocol": sf.protocol})
    kwargs["additional_snowflake_connection_args"] = extra
    return SnowflakeResource(**kwargs)


def snowflake_resource_from_settings(settings: Settings, **overrides) -> "SnowflakeResource":
    """``snowflake_resource(settings.snowflake, ...)``."""
    return snowflake_resource(settings.snowflake, **overrides)


def snowflake_resource_from_env(environ: Mapping[str, str] | None = None, **overrides) -> "SnowflakeResource":
    """Shorthand for ``snowflake_resource(Settings.from_env(environ).snowflake, ...)``."""
    return snowflake_resource(Settings.from_env(environ).snowflake, **overrides)


def is_loopback(host: str | None) -> bool:
    return (host or "").strip().lower() in ("127.0.0.1", "localhost", "::1", "[::1]")


def apply(stmts: Sequence[Statement], resource, out=sys.stdout) -> int:
    """Run statements one by one; print each (SQL has no secrets) and stop at the first failure.

    ``dg.build_resources`` initialises the resource outside a run, resolving its EnvVar secret
    at this moment only."""
    import dagster as dg

    with dg.build_resources({"snowflake": resource}) as resources:
        with resources.snowflake.get_connection() as con:
            cur = con.cursor()
            for i, s in enumerate(stmts, 1):
                print(f"[{i}/{len(stmts)}] {s.sql}", file=out)
                cur.execute(s.sql)
    return len(stmts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="netflix-elt provision",
        description="Print (--dry-run) or apply the Snowflake provisioning SQL. Credentials come from the "
        "environment only: SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER, and SNOWFLAKE_PASSWORD or SNOWFLAKE_PRIVATE_KEY_PATH.",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the SQL, connect to nothing")
    parser.add_argument("--database", help="default: $SNOWFLAKE_DATABASE or NETFLIX_ELT")
    parser.add_argument("--warehouse", help="default: $SNOWFLAKE_WAREHOUSE or NETFLIX_ELT_WH")
    parser.add_argument("--bucket", help="default: $NETFLIX_ELT_BUCKET or netflix-elt")
    parser.add_argument("--integration-role-arn", help="IAM role Snowflake assumes to read the bucket "
                        "(default: $SNOWFLAKE_INTEGRATION_ROLE_ARN)")
    parser.add_argument("--data-only", action="store_true",
                        help="only database, schemas, file format and tables (what an emulator supports)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    settings = Settings.from_env()
    names = SnowflakeNames.from_settings(
        settings, database=args.database, warehouse=args.warehouse, bucket=args.bucket,
        integration_role_arn=args.integration_role_arn,
    )
    stmts = statements(names)
    if args.data_only:
        stmts = [s for s in stmts if s.kind == DATA]
    if args.dry_run:
        sys.stdout.write(render(stmts))
        return 0
    try:
        # No role: the script switches roles itself (SYSADMIN, ACCOUNTADMIN, SECURITYADMIN), and
        # the pipeline's roles do not exist before the first run of it.
        resource = snowflake_resource(settings.snowflake, warehouse=names.warehouse)
    except SettingsError as err:
        raise SystemExit(str(err)) from None
    count = apply(stmts, resource)
    print(f"applied {count} statements to database {names.database}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
